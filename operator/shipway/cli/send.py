"""The client's half of an upload: wait for the receiver pod, attach, stream, report progress.

The handshake: the Pipeline (``spec.source.upload``) is created first; the operator starts
the receiver pod, whose only container runs ``tar -x`` on its standard input (``stdin``,
``stdinOnce``). Once that container runs, this side attaches to its standard input, sends
the tar (:func:`shipway.cli.upload.write_tar`), whose last member is the end marker, and
closes the input. The receiver checks the marker, reports files and bytes and exits 0: the
operator's signal that the workspace is complete, and step 1 starts. Nothing in the spec
changes, so the spec stays immutable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipway.cli.cluster import ClusterError, PipelineApi
from shipway.cli.format import is_finished, pipeline_status
from shipway.cli.upload import Entry, UploadError, list_tree, totals, write_tar
from shipway.compiler.source import Upload
from shipway.engine.checkout import RECEIVER
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.prepare import source_pod_name

POLL_SECONDS = 0.25
START_TIMEOUT = 300.0
"""How long the receiver may take to start (claim, node, image) before the upload gives up."""


def format_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def progress_text(files: int, sent: int, total_files: int, total: int, width: int = 24) -> str:
    """``upload [#######.....]  12.3 MB / 50.0 MB  1234/5000 files``."""
    share = sent / total if total else 1.0
    filled = int(share * width)
    bar = "#" * filled + "." * (width - filled)
    return (
        f"upload [{bar}] {format_bytes(sent)} / {format_bytes(total)}  {files}/{total_files} files"
    )


def _receiver(api: PipelineApi, created: Manifest, deadline: float) -> str:
    """The receiver pod's name once its container runs; ClusterError if it never will."""
    meta = created.get("metadata") or {}
    name = meta.get("name", "")
    ref = PipelineRef(name, api.namespace, meta.get("uid", ""))
    pod = source_pod_name(ref, Upload(0))
    while True:
        pipeline = api.get(name)
        if pipeline is None:
            raise ClusterError(404, f"pipeline {name!r} disappeared before the upload")
        status = pipeline_status(pipeline)
        if status.source is not None and status.source.pod:
            pod = status.source.pod
        if is_finished(pipeline):
            raise ClusterError(0, f"pipeline {name} ended before the upload: {status.message}")
        body = api.read_pod(pod)
        for item in ((body or {}).get("status") or {}).get("containerStatuses") or ():
            if item.get("name") == RECEIVER and "running" in (item.get("state") or {}):
                return pod
        if time.monotonic() > deadline:
            raise ClusterError(0, f"the upload receiver {pod} did not start in time")
        time.sleep(POLL_SECONDS)


def send_directory(
    api: PipelineApi,
    created: Manifest,
    root: Path,
    show: Callable[[str], None],
    note: Callable[[str], None],
    entries: list[Entry] | None = None,
) -> tuple[int, int]:
    """Stream ``root`` into the pipeline's workspace; (files, bytes) sent.

    ``show`` gets the progress line as it changes (a terminal's footer), ``note`` whole lines.
    """
    entries = list_tree(root) if entries is None else entries
    total_files, total = totals(entries)
    note(f"shipway: uploading {root} ({total_files} files, {format_bytes(total)})")
    started = time.monotonic()
    pod = _receiver(api, created, started + START_TIMEOUT)
    waited = time.monotonic() - started
    socket: Any = api.attach_stdin(pod, RECEIVER)
    sent_at = time.monotonic()
    last = [0.0]

    def progress(files: int, sent: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.1 or files == total_files:
            last[0] = now
            show(progress_text(files, sent, total_files, total))

    def send(data: bytes) -> None:
        if not socket.is_open():
            raise UploadError("the connection to the upload receiver closed")
        socket.write_stdin(data)

    try:
        write_tar(root, entries, send, progress)
        socket.close_channel(0)  # end of input (v5 protocol); else closing the socket does it
        socket.run_forever(timeout=60)
    finally:
        socket.close()
    took = time.monotonic() - sent_at
    note(
        f"shipway: uploaded {total_files} files ({format_bytes(total)}) in {took:.1f}s "
        f"(receiver ready after {waited:.1f}s)"
    )
    return total_files, total
