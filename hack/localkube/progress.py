"""Progress of a cold build a person can trust: component k of N, time spent, time expected.

A fresh machine's first ``up`` builds Kubernetes, CoreDNS, the registry, BuildKit… from the Go
module proxy: half an hour on two cores, thirteen minutes of it in one ``go build``. So every
build says where it stands (``[2/6] coredns``), and while it runs a line every
:data:`INTERVAL` seconds says how long it has taken and about how long it takes: what this
machine recorded for the component the last time it built it (``<cache>/build-times.json``,
kept across versions), else :data:`REFERENCE_SECONDS`, what a cold build took on a 2-core
machine. The pure parts (the plan, the lines) are tested without building anything.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

INTERVAL = 30.0
RECORD_FILE = "build-times.json"

REFERENCE_SECONDS: dict[str, float] = {
    "kubernetes": 801,
    "buildkit": 244,
    "local-path-provisioner": 178,
    "coredns": 160,
    "helm": 143,
    "kwok": 134,
    "registry": 113,
    "crane": 14,
    "pause": 5,
}
"""Cold builds on the project's 2-core machine (a fresh ``make demo``, issue #28), for a
machine that has recorded none of its own."""


def family(target: str) -> str:
    """``kubernetes-v1.35.4`` → ``kubernetes``: what a record outlives a version bump by."""
    return re.sub(r"-v?[0-9][^/]*$", "", target)


def read_records(cache: Path) -> dict[str, float]:
    try:
        data = json.loads((cache / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def record(cache: Path, name: str, seconds: float) -> None:
    """Remember how long ``name`` (a target family) took to build here."""
    records = read_records(cache)
    records[name] = round(seconds, 1)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / RECORD_FILE
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    partial.replace(path)


def expected(name: str, records: Mapping[str, float]) -> float | None:
    """Seconds ``name`` (a target family) should take: this machine's record, else the
    reference; None for a component never measured."""
    return records.get(name, REFERENCE_SECONDS.get(name))


def duration(seconds: float) -> str:
    """``75`` → ``1m15s``, ``800`` → ``13m20s``, ``9`` → ``9s``."""
    whole = max(0, round(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def plan_line(names: Sequence[str], records: Mapping[str, float]) -> str:
    """The first line of a build: what will be built and about how long it all takes."""
    parts = []
    total = 0.0
    for name in names:
        seconds = expected(name, records)
        total += seconds or 0
        parts.append(f"{name} ~{duration(seconds)}" if seconds else name)
    return (
        f"building {len(names)} component(s), about {duration(total)} in all on 2 cores "
        f"(once; then cached): {', '.join(parts)}"
    )


def start_line(k: int, n: int, name: str, records: Mapping[str, float]) -> str:
    seconds = expected(name, records)
    about = f", usually ~{duration(seconds)}" if seconds else ""
    return f"{_place(k, n)}building {name}{about}"


def _place(k: int, n: int) -> str:
    return f"[{k}/{n}] " if n else ""


def tick_line(
    k: int, n: int, name: str, elapsed: float, *, records: Mapping[str, float], detail: str = ""
) -> str:
    """A still-alive line: time spent and time left against what it usually takes."""
    seconds = expected(name, records)
    head = f"{_place(k, n)}{name}{f' ({detail})' if detail else ''}"
    if seconds is None:
        return f"{head}: {duration(elapsed)} so far"
    if elapsed <= seconds:
        return (
            f"{head}: {duration(elapsed)} of about {duration(seconds)}, "
            f"~{duration(seconds - elapsed)} left"
        )
    return (
        f"{head}: {duration(elapsed)}, longer than the usual {duration(seconds)} "
        "(a busy machine?); still building"
    )


def ticker(
    k: int, n: int, name: str, clock: Clock, *, records: Mapping[str, float], detail: str = ""
) -> Callable[[], str]:
    """What :func:`ticking` says for one build, evaluated at each tick."""
    return lambda: tick_line(k, n, name, clock.elapsed, records=records, detail=detail)


def done_line(k: int, n: int, name: str, elapsed: float) -> str:
    return f"{_place(k, n)}built {name} in {duration(elapsed)}"


@contextmanager
def ticking(
    say: Callable[[], str],
    emit: Callable[[str], None],
    interval: float = INTERVAL,
) -> Iterator[None]:
    """Call ``emit(say())`` every ``interval`` seconds while the body runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            emit(say())

    thread = threading.Thread(target=loop, name="localkube-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Clock:
    """Elapsed time of the current build step (monotonic)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.started = now()

    @property
    def elapsed(self) -> float:
        return self.now() - self.started
