"""Codeship's ``tag`` / ``exclude`` branch filters, matched with RE2 as Codeship (Go) does.

Codeship is written in Go, whose regular expressions are RE2: matching takes time linear in the
branch name whatever the pattern, and backreferences and lookarounds are syntax errors. Python's
``re`` backtracks: ``^(a+)+$`` against ``aaaa…a!`` never finishes, and one such Pipeline stalled
the operator. Using RE2 (``google-re2``) gives Codeship's syntax and its bounded cost. Compiling
is bounded too: patterns are at most 256 characters (the models say so) and RE2 refuses programs
over its memory budget; compiled patterns are cached.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from shipway.models import CIContext

_MAX_PROGRAM_BYTES = 1 << 20
"""RE2's memory budget per pattern: a filter needs a few kB; larger programs are refused."""


def build_tag(ci: CIContext, checked_out: str | None = None) -> str:
    """The name filters match against: the git tag being built, else the branch, else what
    the source checks out."""
    return ci.tag or ci.branch or checked_out or ""


def is_regex(pattern: str) -> bool:
    """Codeship treats a filter as a regular expression only when it contains ^ or $."""
    return "^" in pattern or "$" in pattern


class PatternError(ValueError):
    """A filter that RE2 (so Go, so Codeship) cannot compile."""


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every bad pattern on stderr
    options.max_mem = _MAX_PROGRAM_BYTES
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        # RE2 says "<what>: <the offending part>"; the caller names the whole pattern already.
        reason, _, part = text.partition(": ")
        raise PatternError(
            f"{reason} at {part!r}" if part and part != pattern else reason
        ) from None


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used as a filter, or None when it can."""
    if not is_regex(pattern):
        return None
    try:
        _compiled(pattern)
    except PatternError as exc:
        return f"invalid regular expression {pattern!r}: {exc}"
    return None


def matches(pattern: str, name: str) -> bool:
    """A plain string must equal the whole name; a regex may match anywhere (Go's MatchString)."""
    if is_regex(pattern):
        return _compiled(pattern).search(name) is not None
    return pattern == name


def selected(tag: str | None, exclude: str | None, name: str) -> bool:
    """Whether a step with these filters runs for build tag ``name``; ``exclude`` wins."""
    if exclude is not None and matches(exclude, name):
        return False
    return tag is None or matches(tag, name)
