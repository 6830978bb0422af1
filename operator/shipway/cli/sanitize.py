"""Text from a cluster made safe for a terminal (pure).

A step's log, its termination message, a kubelet's message and every name in a Pipeline are
written by whoever runs the step or creates the object. Printed raw, ``\\x1b[2K\\r`` erases the
line a failure was reported on and ``\\r`` overwrites it, so a failed step can be made to look
like a success; OSC sequences set the terminal's title or write to its clipboard. So every
control character (C0, DEL, C1), ESC included, is shown escaped (``\\x1b``), as are the
bidirectional overrides that reorder what is shown; tabs stay, newlines stay where the text is
several lines (a log). Shipway's own colours are added after this, around escaped text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Characters that reorder the text around them (Trojan Source): shown escaped too."""
_NAMED = {
    "\r": "\\r",
    "\n": "\\n",
    "\x1b": "\\x1b",
    "\b": "\\b",
    "\a": "\\a",
    "\f": "\\f",
    "\v": "\\v",
}


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _unsafe(char: str, newlines: bool) -> bool:
    code = ord(char)
    if char == "\t" or (newlines and char == "\n"):
        return False
    return code < 0x20 or 0x7F <= code <= 0x9F or char in BIDI_CONTROLS


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character shown escaped, except tabs (and newlines when
    ``newlines``): nothing in it can move the cursor, erase, or talk to the terminal."""
    if text.isprintable() and text.isascii():
        return text  # the common case, fast: no control character at all
    return "".join(_escaped(c) if _unsafe(c, newlines) else c for c in text)


def printable_tree(value: Any) -> Any:
    """A JSON value (a Pipeline's status) with :func:`printable` applied to every string in
    it, newlines kept (messages of several lines are split by their readers)."""
    if isinstance(value, str):
        return printable(value, newlines=True)
    if isinstance(value, Mapping):
        return {key: printable_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [printable_tree(item) for item in value]
    return value
