"""Codeship's ``tag`` / ``exclude`` branch filters."""

from __future__ import annotations

import re

from shipway.models import CIContext


def build_tag(ci: CIContext, checked_out: str | None = None) -> str:
    """The name filters match against: the git tag being built, else the branch, else what
    the source checks out."""
    return ci.tag or ci.branch or checked_out or ""


def is_regex(pattern: str) -> bool:
    """Codeship treats a filter as a regular expression only when it contains ^ or $."""
    return "^" in pattern or "$" in pattern


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used as a filter, or None when it can."""
    if not is_regex(pattern):
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression {pattern!r}: {exc}"
    return None


def matches(pattern: str, name: str) -> bool:
    """A plain string must equal the whole name; a regex may match anywhere (Go's MatchString)."""
    if is_regex(pattern):
        return re.search(pattern, name) is not None
    return pattern == name


def selected(tag: str | None, exclude: str | None, name: str) -> bool:
    """Whether a step with these filters runs for build tag ``name``; ``exclude`` wins."""
    if exclude is not None and matches(exclude, name):
        return False
    return tag is None or matches(tag, name)
