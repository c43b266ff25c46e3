"""``kser COMMAND --help`` and ``--helpfull``: what each prints.

Why kser prints help itself: absl's ``--help`` lists the flags of the main module only (here
``kser_cli.main``, which has none), and ``--helpfull`` is defined only inside ``app.run``, after
kser has parsed the flags. ``--help`` lists the command's own flags and ``--verbosity``, absl's
flag that every command takes; ``--helpfull`` lists every flag, absl's included.
"""

from __future__ import annotations

from types import ModuleType

SHORT_HELP_ARGS = ("-h", "--help", "-help", "--helpshort", "-helpshort")
FULL_HELP_ARGS = ("--helpfull", "-helpfull")


def wanted_help(args: list[str]) -> str | None:
    """``"full"``, ``"short"`` or None: which help the command-line arguments ask for."""
    if any(arg in FULL_HELP_ARGS for arg in args):
        return "full"
    return "short" if any(arg in SHORT_HELP_ARGS for arg in args) else None


def command_help(command: str, module: ModuleType, full: bool) -> str:
    """The help text of ``kser COMMAND``: its docstring, then its flags (all flags when ``full``)."""
    from absl import flags

    parts = [f"usage: kser {command} [--flags]\n\n{(module.__doc__ or '').strip()}\n"]
    if full:
        parts.append(flags.FLAGS.get_help())
    else:
        parts += [flags.FLAGS.module_help(m) for m in getattr(module, "FLAG_MODULES", ()) + (module,)]
        parts.append(_common_flags())
    return "\n".join(part for part in parts if part.strip())


def _common_flags() -> str:
    from absl import flags

    verbosity = flags.FLAGS["verbosity"]
    return (
        "every command:\n"
        "  --verbosity: absl's logging level; 1 also shows TensorFlow's native start-up lines,\n"
        f"    which kser hides otherwise\n    (default: '{verbosity.default}')\n"
        "  --helpfull: every flag, absl's included"
    )
