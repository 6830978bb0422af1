"""``shipway run --dir``: the project's files streamed into the pipeline's workspace.

The operator starts an upload receiver pod (``tar -x`` into the claim, stdin open for one
attach); this module lists the directory the way ``jet steps`` would see it, without ``.git``
and what ``.shipwayignore`` leaves out, and streams it as a tar through ``pods/attach``
(permission ``create`` on ``pods/attach``, which the ``edit`` role has). The stream's last
member is a marker: a receiver that reaches the end of its input without it (Ctrl-C, a cut
connection) fails, and the pipeline fails with it, never running on half a tree.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipway.cli.ignore import IGNORE_FILE, IgnoreRules
from shipway.engine.pods.scripts import UPLOAD_MARKER

CHUNK = 256 * 1024
SKIPPED_NAMES = {".git", UPLOAD_MARKER}
"""Left out everywhere: git's own data (a checkout has it, an upload sends the work tree)."""


class UploadError(Exception):
    """The files could not be read or sent."""


@dataclass(frozen=True)
class Entry:
    path: str
    """Relative, ``/``-separated."""
    kind: str
    """file, dir or symlink."""
    size: int
    mode: int
    mtime: float
    target: str = ""


def list_tree(root: Path) -> list[Entry]:
    """What an upload of ``root`` holds, parents before children.

    Symlinks are sent as symlinks, never followed (a link pointing outside the directory
    sends no file from there; in the cluster the kubelet refuses to mount through it).
    Sockets, pipes and devices are left out.
    """
    if not root.is_dir():
        raise UploadError(f"{root}: not a directory")
    ignore_file = root / IGNORE_FILE
    try:
        rules = IgnoreRules(ignore_file.read_text().splitlines() if ignore_file.is_file() else [])
    except (OSError, ValueError) as exc:
        raise UploadError(f"{ignore_file}: {exc}") from None
    entries: list[Entry] = []

    def walk(directory: Path, prefix: str) -> None:
        try:
            children = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise UploadError(f"{directory}: {exc.strerror or exc}") from None
        for child in children:
            rel = f"{prefix}{child.name}"
            if child.name in SKIPPED_NAMES:
                continue
            info = child.stat(follow_symlinks=False)
            ignored = rules.ignored(rel)
            if stat.S_ISDIR(info.st_mode):
                if ignored and not rules.reincludes:
                    continue
                if not ignored:
                    entries.append(Entry(rel, "dir", 0, info.st_mode & 0o7777, info.st_mtime))
                walk(Path(child.path), rel + "/")
            elif ignored:
                continue
            elif stat.S_ISLNK(info.st_mode):
                target = os.readlink(child.path)
                entries.append(Entry(rel, "symlink", 0, 0o777, info.st_mtime, target))
            elif stat.S_ISREG(info.st_mode):
                entries.append(
                    Entry(rel, "file", info.st_size, info.st_mode & 0o7777, info.st_mtime)
                )

    walk(root, "")
    return entries


class _Sink(io.RawIOBase):
    """A write-only file that hands full chunks to ``send`` (tarfile writes small pieces)."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.send = send
        self.buffer = bytearray()
        self.sent = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.buffer += data
        while len(self.buffer) >= CHUNK:
            self.send(bytes(self.buffer[:CHUNK]))
            del self.buffer[:CHUNK]
            self.sent += CHUNK
        return len(data)

    def flush_all(self) -> None:
        if self.buffer:
            self.send(bytes(self.buffer))
            self.sent += len(self.buffer)
            self.buffer.clear()


def write_tar(
    root: Path,
    entries: list[Entry],
    send: Callable[[bytes], None],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Stream ``entries`` of ``root`` as a tar to ``send``, the end marker last.

    Owners are root (numeric 0, no names), as in an image layer; modes and times are kept.
    ``progress`` gets (files sent, bytes of file content sent).
    """
    sink = _Sink(send)
    files = content = 0
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mode, info.mtime = entry.mode, int(entry.mtime)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            if entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
                continue
            path = root / entry.path
            try:
                with path.open("rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    info.size = size
                    tar.addfile(info, handle)
            except OSError as exc:
                raise UploadError(f"{path}: {exc.strerror or exc}") from None
            files += 1
            content += size
            if progress is not None:
                progress(files, content)
        marker = f"{files} {content}\n".encode()
        info = tarfile.TarInfo(UPLOAD_MARKER)
        info.size, info.mtime, info.mode = len(marker), int(time.time()), 0o644
        tar.addfile(info, io.BytesIO(marker))
    sink.flush_all()


def totals(entries: list[Entry]) -> tuple[int, int]:
    """(files, bytes) an upload of ``entries`` sends."""
    files = [e for e in entries if e.kind == "file"]
    return len(files), sum(e.size for e in files)
