"""Which settings differ between a stored run and the one asked for, in words a user can act on.

Why: a rerun that is refused because "the settings differ" leaves the user diffing JSON files by
hand. ``train``, ``cross-validate`` and ``build-records`` compare nested JSON settings; this names
each differing one by its dotted path with both values, e.g. ``train.learning_rate: 0.001 -> 0.002``.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

_ABSENT = object()  # a key only one side has
MOST_LISTED = 10  # a longer list is cut, with a count of the rest
VALUE_CHARS = 48  # a longer value (a list of folds, a hash) is cut: its name says enough


def differing_settings(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key.path: old -> new`` for each leaf that differs (dicts are walked, lists compared whole)."""
    found = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found.extend(differing_settings(a, b, f"{prefix}{key}."))
        elif a != b:
            found.append(f"{prefix}{key}: {_value(a)} -> {_value(b)}")
    return found


def describe_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The differences on one line, ``; ``-separated, at most :data:`MOST_LISTED` of them."""
    found = differing_settings(old, new)
    shown = found[:MOST_LISTED]
    rest = len(found) - len(shown)
    return "; ".join(shown) + (f"; and {rest} more" if rest else "")


def _value(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."
