"""Typed reads of objects anyone may have written (pure).

Whoever may create pods in a watched namespace writes their labels, annotations, owner
references and spec, so a step pod's fields are input, not data: a label ``"x"`` where a
number belongs, a list where a map belongs, a number where a string belongs. These readers
never raise on a wrong type: they return the default, or raise :class:`MalformedObjectError`
where the caller must not guess (a step's attempt number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_ATTEMPT = 10_000
"""No step is retried this often (the schema allows far fewer retries): a larger label lies."""


class MalformedObjectError(ValueError):
    """An object that cannot be one of Shipway's: the caller skips it, naming it."""


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> Sequence[Mapping[str, Any]]:
    """The mappings of a list; anything else in it (or a non-list) is dropped."""
    if not isinstance(value, list):
        return ()
    return [item for item in value if isinstance(item, Mapping)]


def text(value: Any) -> str | None:
    """A string, or None for anything else (a number, a list, null)."""
    return value if isinstance(value, str) else None


def integer(value: Any) -> int | None:
    """An integer, or None (``True`` is not one, although Python says so)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def attempt_label(value: Any) -> int:
    """A step pod's attempt label: decimal digits of a sane number; absent means 0."""
    if value is None or value == "":
        return 0
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise MalformedObjectError(f"attempt label {str(value)[:64]!r} is not a number")
    if len(value) > 6 or int(value) > MAX_ATTEMPT:
        raise MalformedObjectError(f"attempt label {value[:64]!r} is out of range")
    return int(value)


def object_name(obj: Any) -> str:
    """``namespace/name`` of an object, for a warning, whatever the object holds."""
    meta = mapping(mapping(obj).get("metadata"))
    namespace, name = text(meta.get("namespace")) or "?", text(meta.get("name")) or "?"
    return f"{namespace[:63]}/{name[:253]}"
