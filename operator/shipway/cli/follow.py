"""Following a running Pipeline: its progress, and every step's logs as they are written.

The main thread watches the Pipeline object and turns each new status into attempt events
(:mod:`shipway.cli.tracker`). Every attempt gets a thread that streams its pod's log with
the ``(step: NAME)`` prefix and then prints the attempt's result line, so a step's result
always comes after its last log line. A step's stream first waits for the streams of the steps
that had already ended when it started: serial steps print in order, parallel ones interleave.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from shipway.cli.cluster import ClusterError, LogNotReadyError, PipelineApi
from shipway.cli.format import (
    Style,
    is_finished,
    kind_of,
    log_line,
    pipeline_status,
    progress_line,
    result_line,
    step_header,
)
from shipway.cli.tracker import AttemptEnded, AttemptStarted, Tracker
from shipway.cli.tree import is_build
from shipway.engine.naming import container_name
from shipway.engine.objects import Manifest
from shipway.engine.plan.builds.result import summary
from shipway.engine.pods.build import CONTAINER as BUILD_CONTAINER
from shipway.engine.pods.push import CONTAINER as PUSH_CONTAINER
from shipway.models import StepStatus

RETRY_SECONDS = 0.5
DRAIN_SECONDS = 10.0
"""How long a log stream may go on after its attempt ended before it is cut."""
WATCH_SECONDS = 60
RETRY_STATUSES = (0, 410, 429, 500, 503, 504)
"""Watch failures to look again after: a lost connection, an expired version, the server
busy or its storage (re)initializing (429, which another client's CRD update causes)."""
HINT_SECONDS = 20.0
"""Say so when no operator has written a status after this long."""


class Printer:
    """Whole lines to one stream from many threads; on a terminal, a live progress footer."""

    def __init__(self, out: TextIO, live: bool, mask: Callable[[str], str] | None = None) -> None:
        self.out = out
        self.live = live
        self.mask = mask
        """Applied to every line: the values of the Pipeline's Secrets become ***."""
        self.lock = threading.Lock()
        self.footer = ""

    def line(self, text: str) -> None:
        if self.mask is not None:
            text = self.mask(text)
        with self.lock:
            if self.live and self.footer:
                self.out.write("\r\x1b[K")
            self.out.write(text + "\n")
            if self.live and self.footer:
                self.out.write(self.footer)
            self.out.flush()

    def set_footer(self, text: str) -> None:
        with self.lock:
            self.footer = text
            self.out.write("\r\x1b[K" + text)
            self.out.flush()

    def clear_footer(self) -> None:
        with self.lock:
            if self.footer:
                self.out.write("\r\x1b[K")
                self.out.flush()
            self.footer = ""


@dataclass
class _Stream:
    """One attempt's log stream and what its thread needs to finish it."""

    step: StepStatus
    pod: str
    after: list[_Stream]
    done: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    outcome: AttemptEnded | None = None
    ended_at: float | None = None
    response: Any = None
    thread: threading.Thread | None = None


@dataclass
class Follower:
    api: PipelineApi
    name: str
    printer: Printer
    style: Style
    logs: bool = True
    include: Callable[[StepStatus], bool] | None = None
    progress: bool = True
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    streams: dict[str, _Stream] = field(default_factory=dict)
    last_progress: str = ""
    current: Manifest | None = None
    hint_after: float = HINT_SECONDS
    hinted: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.include) if self.include else Tracker()

    # -- the pipeline ---------------------------------------------------------------------

    def follow(self, pipeline: Manifest | None = None) -> Manifest:
        """Follow until the pipeline has finished and every log is printed; return its last state."""
        current = pipeline or self._get()
        self.stopping = threading.Event()
        ticker = None
        if self.printer.live and self.progress:
            ticker = threading.Thread(target=self._tick, daemon=True, name="progress")
        self._observe(current)
        if ticker is not None:
            ticker.start()
        began = time.monotonic()
        try:
            while not is_finished(current):
                current = self._next(current)
                self._observe(current)
                self._hint(current, time.monotonic() - began)
        finally:
            self.stopping.set()
            if ticker is not None:
                ticker.join(timeout=2)
        self._finish()
        self.printer.clear_footer()
        return current

    def _hint(self, current: Manifest, waited: float) -> None:
        """Once, when nothing has written a status for a while: the operator may be missing."""
        if self.hinted or current.get("status") or waited < self.hint_after:
            return
        self.hinted = True
        self.printer.line(
            f"shipway: no operator has taken up pipeline {self.name} yet; is one running and "
            f"watching namespace {self.api.namespace}?"
        )

    def _get(self) -> Manifest:
        found = self.api.get(self.name)
        if found is None:
            raise ClusterError(404, f"pipeline {self.name!r} not found")
        return found

    def _next(self, current: Manifest) -> Manifest:
        """The next version of the pipeline, from a watch (a fresh GET after any hiccup)."""
        version = (current.get("metadata") or {}).get("resourceVersion")
        try:
            waiting = not current.get("status")
            timeout = HINT_SECONDS if waiting and not self.hinted else WATCH_SECONDS
            for event in self.api.watch(self.name, version, int(timeout)):
                kind = event.get("type")
                obj = event.get("object")
                if kind == "DELETED":
                    raise ClusterError(410, f"pipeline {self.name!r} was deleted")
                if kind in ("ADDED", "MODIFIED") and isinstance(obj, dict):
                    return obj
        except ClusterError as exc:
            if exc.status not in RETRY_STATUSES or "deleted" in str(exc):
                raise
            time.sleep(RETRY_SECONDS)
        except Exception:  # connection reset, read timeout: look again
            time.sleep(RETRY_SECONDS)
        return self._get()

    def _observe(self, pipeline: Manifest) -> None:
        status = pipeline_status(pipeline)
        for event in self.tracker.update(status):
            if isinstance(event, AttemptEnded):
                self._ended(event)
            else:
                self._started(event)
        if self.progress:
            self._progress(pipeline)

    def _progress(self, pipeline: Manifest) -> None:
        if self.printer.live:
            self.current = pipeline
            self.printer.set_footer(progress_line(pipeline, self.clock(), self.style))
            return
        line = progress_line(pipeline, self.clock(), Style(), timed=False)
        if line != self.last_progress:  # plain output: a line when something changed
            self.last_progress = line
            self.printer.line(f"shipway: {line}")

    def _tick(self) -> None:
        while not self.stopping.wait(1.0):
            current = self.current
            if current is not None and not is_finished(current):
                self.printer.set_footer(progress_line(current, self.clock(), self.style))

    # -- attempts -------------------------------------------------------------------------

    def _started(self, event: AttemptStarted) -> None:
        after = [s for s in self.streams.values() if s.ended.is_set()]
        stream = _Stream(event.step, event.pod, after)
        self.streams[event.pod] = stream
        stream.thread = threading.Thread(
            target=self._stream, args=(stream,), daemon=True, name=f"log-{event.pod}"
        )
        stream.thread.start()

    def _ended(self, event: AttemptEnded) -> None:
        stream = self.streams.get(event.pod) if event.pod else None
        if stream is None:  # ended without a pod to read: just the result
            self.printer.line(self._result(event))
            return
        stream.outcome = event
        stream.ended_at = time.monotonic()
        stream.ended.set()

    def _result(self, event: AttemptEnded) -> str:
        message = event.message
        if is_build(event.step) and message:  # its log showed BuildKit's lines: the gist
            message = summary(message)
        return result_line(
            event.step.name,
            str(event.phase),
            event.reason,
            message,
            style=self.style,
            retrying=not event.final,
            kind=kind_of(event.step),
        )

    def _stream(self, stream: _Stream) -> None:
        try:
            for earlier in stream.after:
                earlier.done.wait()
            self.printer.line(step_header(_attempt_view(stream), self.style))
            if self.logs:
                self._copy_log(stream)
            stream.ended.wait()
            if stream.outcome is not None:
                self.printer.line(self._result(stream.outcome))
        finally:
            stream.done.set()

    def _copy_log(self, stream: _Stream) -> None:
        """Copy the attempt's log; reopen it until the attempt has ended, skipping lines seen.

        A follow stream also ends early without any line when the pod has no node yet, so an
        end of stream only counts once the attempt has ended (then one last full read).
        """
        container = log_container(stream.step)
        seen = 0
        while True:
            last_look = stream.ended.is_set()
            try:
                response = self.api.open_log(stream.pod, container, follow=not last_look)
            except LogNotReadyError:
                if last_look:
                    return
                stream.ended.wait(RETRY_SECONDS)
                continue
            except ClusterError as exc:
                self.printer.line(
                    log_line(
                        stream.step.name,
                        f"[cannot read the log: {exc}]",
                        kind=kind_of(stream.step),
                    )
                )
                return
            seen = self._drain(stream, response, seen)
            if last_look:
                return
            stream.ended.wait(RETRY_SECONDS)

    def _drain(self, stream: _Stream, response: Any, skip: int) -> int:
        """Print the lines of one log response after the first ``skip``; return lines read."""
        stream.response = response
        count = 0
        buffer = b""

        def emit(raw: bytes) -> None:
            nonlocal count
            count += 1
            if count > skip:
                text = raw.decode("utf-8", errors="replace").rstrip("\r")
                self.printer.line(
                    log_line(stream.step.name, text, self.style, kind_of(stream.step))
                )

        try:
            for chunk in response.stream(4096, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    emit(raw)
        except Exception:  # cut after the drain time, or the connection broke
            pass
        finally:
            if buffer:
                emit(buffer)
            stream.response = None
            response.release_conn()
        return max(count, skip)

    def _finish(self) -> None:
        """Wait for every stream; cut the ones still open long after their attempt ended."""
        finished = time.monotonic()
        for stream in list(self.streams.values()):
            while not stream.done.wait(0.5):
                now = time.monotonic()
                if not stream.ended.is_set() and now - finished > DRAIN_SECONDS:
                    stream.ended_at = now  # the pipeline ended without saying how this did
                    stream.ended.set()
                if (
                    stream.ended_at is not None
                    and stream.response is not None
                    and now - stream.ended_at > DRAIN_SECONDS
                ):
                    stream.response.shutdown()


def log_container(step: StepStatus) -> str:
    """The container whose log is the step's: the service's, a build pod's ``build``, or a
    push step's ``push`` (a push step's status names its target from the start)."""
    if is_build(step):
        return BUILD_CONTAINER
    return PUSH_CONTAINER if step.image else container_name(step.service)


def _attempt_view(stream: _Stream) -> StepStatus:
    """The step as it was for this attempt (the header shows the attempt number)."""
    for earlier in stream.step.attempts:
        if earlier.pod == stream.pod:
            return stream.step.model_copy(update={"attempt": earlier.attempt})
    return stream.step
