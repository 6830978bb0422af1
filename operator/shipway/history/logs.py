"""A step's log as the history keeps it: capped, masked and compressed (pure).

A log is read once, as a stream, when its pod finishes. :class:`LogCap` keeps its first and
last halves of the cap, cut at line ends, with a line saying what was cut in between: the
start of a failing build and its end are what one reads. The cut is at line ends so that a
secret is never split across it (the masking would miss a half).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

DEFAULT_CAP = 16 * 1024 * 1024
"""Bytes kept of one container's log (16 MiB): head and tail, half each."""
CUT_MARK = (
    "\n[shipway: {bytes} bytes of this log were cut here; the first and last {keep} are kept]\n"
)
MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: masking "1", "yes" or "dev" everywhere would garble the log
and, by what it masks, tell the value anyway (GitHub Actions has the same floor in spirit)."""


class LogCap:
    """Feed it a log chunk by chunk; it keeps at most ``cap`` bytes: the head and the tail."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = max(cap, 2)
        self.half = self.cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.half:  # trim now and then, not on every chunk
                del self.tail[: len(self.tail) - self.half]

    @property
    def truncated(self) -> bool:
        return self.size > self.cap

    def result(self) -> bytes:
        """The log kept: whole when it fits, else head, the cut mark and tail at line ends."""
        if not self.truncated:
            return bytes(self.head + self.tail)
        head = bytes(self.head)
        tail = bytes(self.tail[-self.half :])
        nl = head.rfind(b"\n")
        head = head[: nl + 1] if nl >= 0 else head
        nl = tail.find(b"\n")
        tail = tail[nl + 1 :] if nl >= 0 else tail
        cut = self.size - len(head) - len(tail)
        mark = CUT_MARK.format(bytes=cut, keep=f"{self.half // 1024} KiB").lstrip("\n")
        return head + mark.encode() + tail


def cap_log(chunks: Iterable[bytes], cap: int = DEFAULT_CAP) -> tuple[bytes, int, bool]:
    """The log kept of ``chunks``, its full size and whether it was cut."""
    kept = LogCap(cap)
    for chunk in chunks:
        kept.feed(chunk)
    return kept.result(), kept.size, kept.truncated


class Masker:
    """Replaces every secret value in a text by ``***``, longest first (so a value that
    contains another is masked whole)."""

    def __init__(self, values: Iterable[str]) -> None:
        lines: set[str] = set()
        for value in values:
            # A multi-line value (a key file) is masked line by line, as GitHub does: a log
            # prints it one line at a time, often with a prefix.
            for line in value.splitlines() or [value]:
                line = line.strip()
                if len(line) >= MIN_SECRET_LENGTH:
                    lines.add(line)
        self.values = sorted(lines, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.values)

    def mask(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text


def pack(text: str) -> bytes:
    """A log compressed for the store (zlib: in the standard library, ~5-10x on logs)."""
    return zlib.compress(text.encode("utf-8"), 6)


def unpack(data: bytes) -> str:
    return zlib.decompress(data).decode("utf-8", errors="replace")
