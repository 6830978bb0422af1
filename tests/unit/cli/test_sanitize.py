"""Issue 30, item 6: nothing a pod writes can move the cursor, erase or retitle the terminal.

A termination message or a log line holding ``ESC[2K`` + ``CR`` erased the failure and showed
the rest as if it were the line; OSC set the window's title. Every control character is shown
escaped in what ``status``, ``logs`` and ``run`` print; Shipway's own colours stay the only
escape sequences, and they are SGR alone.
"""

from __future__ import annotations

import re

import pytest

from shipway.cli.format import Style, log_line, progress_line, result_line, summary_line
from shipway.cli.sanitize import printable, printable_tree
from shipway.cli.statustree import status_tree

from .client_builders import NOW, pipeline, step

ERASE = "\x1b[2K\r"
TITLE = "\x1b]0;pwned\x07"
HOSTILE = f"boom{ERASE}(step: gate) success ✔{TITLE}\x9b2J\u202eevil"
SGR = re.compile(r"\x1b\[[0-9;]*m")


def only_colours(text: str) -> bool:
    """No control character but the tab, no escape sequence but SGR colours."""
    rest = SGR.sub("", text)
    return not any((ord(c) < 0x20 and c != "\t") or 0x7F <= ord(c) <= 0x9F for c in rest)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("tab\tkept", "tab\tkept"),
        ("\x1b[2K\rfake", "\\x1b[2K\\rfake"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\a"),
        ("csi\x9b31m", "csi\\x9b31m"),
        ("del\x7f nul\x00", "del\\x7f nul\\x00"),
        ("two\nlines", "two\\nlines"),
        ("\u202eright-to-left", "\\u202eright-to-left"),
        ("unicode ✔ é 漢", "unicode ✔ é 漢"),
    ],
)
def test_printable_shows_controls_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_newlines_stay_where_text_has_lines() -> None:
    assert printable("a\nb\x1b", newlines=True) == "a\nb\\x1b"
    assert printable_tree({"a": ["x\x1b\ny", 3, None]}) == {"a": ["x\\x1b\ny", 3, None]}


@pytest.mark.parametrize("colour", [False, True])
def test_step_lines_carry_no_escape_from_the_pod(colour: bool) -> None:
    style = Style(colour)
    lines = [
        log_line(f"gate{TITLE}", HOSTILE, style),
        result_line("gate", "Failed", "Error", HOSTILE, style),
    ]
    for line in lines:
        assert only_colours(line), repr(line)
        assert "\r" not in line
    assert "error ✗" in lines[1]
    assert "\\x1b[2K\\r" in lines[1], "the attempt shows, escaped"


@pytest.mark.parametrize("colour", [False, True])
def test_status_progress_and_summary_carry_no_escape(colour: bool) -> None:
    style = Style(colour)
    failed = step(
        "1",
        "gate",
        "Failed",
        pod="p-1",
        exit_code=1,
        started=1,
        finished=2,
        reason="Error",
        message=HOSTILE,
    )
    running = step("2", f"slow{ERASE}", "Running", pod="p-2", started=1, reason=f"R{TITLE}")
    body = pipeline("Failed", [failed, running], message=HOSTILE, progress="1/2")
    out = [
        *status_tree(body, NOW, style),
        progress_line(body, NOW, style),
        summary_line(body, NOW, style),
    ]
    for line in out:
        assert only_colours(line), repr(line)
    tree = "\n".join(out)
    assert "Failed" in tree
    assert "\\x1b]0;pwned\\a" in tree
