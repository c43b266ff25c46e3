"""``kser COMMAND [--flags]``: one console script, one absl module per command.

Only the chosen command's module is imported, so each command's ``--help`` lists its own
flags and ``kser demo-data`` never pays for importing TensorFlow.
"""

from __future__ import annotations

import importlib
import os
import sys

from kser_cli.broken_pipe import quiet_on_broken_pipe

COMMANDS: dict[str, tuple[str, str]] = {
    "demo-data": ("kser_cli.demo_data", "write the small synthetic demo data set (CREMA-D layout)"),
    "build-records": ("kser_cli.build_records", "audio folder -> sharded TFRecords of prepared waveforms"),
    "train": ("kser_cli.train", "train a model on records, metrics streamed to TensorBoard"),
    "cross-validate": ("kser_cli.cross_validate", "speaker k-fold cross-validation from one records build"),
    "evaluate": ("kser_cli.evaluate", "report, confusion matrix and curves for one split"),
    "export": ("kser_cli.export", "trained model dir -> TensorFlow SavedModel (waveform in, emotion out)"),
    "predict": ("kser_cli.predict", "emotion of audio files with an exported SavedModel"),
}


def _usage() -> str:
    lines = ["usage: kser COMMAND [--flags]   (kser COMMAND --help for a command's flags)", "", "commands:"]
    lines += [f"  {name:<15} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


@quiet_on_broken_pipe  # `kser ... | head`: a silent exit 141, no traceback
def run(argv: list[str] | None = None) -> None:
    """Entry point of the ``kser`` console script."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(_usage())
        sys.exit(0 if len(argv) >= 2 else 2)
    command = argv[1]
    if command not in COMMANDS:
        print(f"kser: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features, CUDA probes) is noise on a command
    # line: the first import of TensorFlow or JAX is silenced, whichever code path makes it.
    from kser.quiet import NATIVE_LOGS_ENV, quiet_native_imports, silenced_stderr

    quiet_native_imports()
    with silenced_stderr():  # a command module may import Keras, and so TensorFlow, at once
        module = importlib.import_module(COMMANDS[command][0])
    from absl import app, flags

    from kser_cli.help_text import command_help, wanted_help

    help_kind = wanted_help(argv[2:])
    if help_kind is not None:
        print(command_help(command, module, full=help_kind == "full"))
        sys.exit(0)
    command_argv = [f"kser {command}"] + argv[2:]
    try:  # absl would print "FATAL Flags parsing error" and a hint; kser's errors are one line
        flags.FLAGS(command_argv)
    except flags.Error as error:
        print(f"kser {command}: error: {error}", file=sys.stderr)
        sys.exit(2)
    if flags.FLAGS.verbosity >= 1:  # absl's --verbosity also opens TensorFlow's native logs
        os.environ[NATIVE_LOGS_ENV] = "1"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    app.run(module.main, argv=command_argv)


if __name__ == "__main__":
    run()
