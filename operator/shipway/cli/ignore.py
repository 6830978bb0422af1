""".shipwayignore: which files of a directory an upload leaves out (pure).

The syntax and matching of ``.dockerignore`` (Moby's ``patternmatcher``), so a project can
copy its ``.dockerignore`` lines: one pattern per line, ``#`` comments, ``*`` and ``?`` within
one path element, ``**`` across any number of them, ``[...]`` classes, ``!`` to include again
what an earlier line left out (the last matching line wins), and a pattern that matches a
directory leaves out everything below it. Paths are relative to the uploaded directory, with
``/`` separators, whatever the leading ``/`` or ``./`` of a pattern.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

IGNORE_FILE = ".shipwayignore"
_SPECIAL = set(".+()|{}$^")


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool
    text: str


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch in _SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise ValueError(f"{pattern!r}: {exc}") from None


class IgnoreRules:
    """The patterns of one ignore file, in order."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.patterns: list[_Pattern] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            cleaned = posixpath.normpath(line).lstrip("/")
            if cleaned in ("", "."):
                continue
            self.patterns.append(_Pattern(_compile(cleaned), exclusion, raw.strip()))

    @property
    def reincludes(self) -> bool:
        """Some ``!`` line may bring back a file below a left-out directory."""
        return any(p.exclusion for p in self.patterns)

    def ignored(self, path: str) -> bool:
        """Whether ``path`` (relative, ``/``-separated) is left out."""
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            hit = pattern.regex.match(path) is not None
            if not hit and parents:
                hit = any(
                    pattern.regex.match("/".join(parents[: i + 1])) is not None
                    for i in range(len(parents))
                )
            if hit:
                matched = not pattern.exclusion
        return matched
