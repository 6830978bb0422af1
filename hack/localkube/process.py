"""Background processes with pidfiles and log files, safe against pid reuse.

A pidfile records the pid and the process start time (field 22 of /proc/PID/stat), so a
recycled pid is never mistaken for one of ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from localkube.errors import LocalkubeError


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces; it is enclosed in the outermost parens.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int, started: int | None = None) -> bool:
    st = start_time(pid)
    return st is not None and (started is None or st == started)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


@dataclass(frozen=True)
class Service:
    """One long-running component: its name, pidfile and log file."""

    name: str
    pid_dir: Path
    log_dir: Path

    @property
    def pidfile(self) -> Path:
        return self.pid_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def read(self) -> tuple[int, int] | None:
        """(pid, start time) from the pidfile, or None."""
        try:
            data = json.loads(self.pidfile.read_text())
            return int(data["pid"]), int(data["start_time"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def recorded(self) -> dict[str, object]:
        """What ``start`` recorded: pid, start time, argv and the configuration stamp."""
        try:
            data = json.loads(self.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def pid(self) -> int | None:
        """The pid if the process recorded in the pidfile is still that process."""
        rec = self.read()
        if rec is None:
            return None
        pid, started = rec
        return pid if alive(pid, started) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stamp: str = "",
    ) -> int:
        """Start ``argv`` detached (own session, stdin from /dev/null), logging to the log file.

        ``stamp`` (a digest of the configuration files it reads) is recorded with the pid so a
        later ``up`` can tell that the running process has an outdated configuration.
        """
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with self.logfile.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LocalkubeError(f"cannot start {self.name}: {exc}") from exc
        started = start_time(proc.pid)
        self.pidfile.write_text(
            json.dumps(
                {"pid": proc.pid, "start_time": started or 0, "argv": list(argv), "stamp": stamp}
            )
        )
        return proc.pid

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; removes the pidfile."""
        pid = self.pid()
        if pid is not None:
            terminate([pid], timeout=timeout)
        self.pidfile.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def terminate(pids: Iterable[int], *, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to every pid, wait for them to exit, SIGKILL whatever is left."""
    targets = {pid: start_time(pid) for pid in pids}
    targets = {pid: st for pid, st in targets.items() if st is not None}
    for pid in targets:
        _signal(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        targets = {p: st for p, st in targets.items() if alive(p, st)}
        if not targets:
            return
        time.sleep(0.1)
    for pid, st in targets.items():
        if alive(pid, st):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p, st) for p, st in targets.items()):
        time.sleep(0.1)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    quiet: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; on failure (or after ``timeout`` seconds) raise
    LocalkubeError with its output."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            list(argv),
            input=data,
            stdout=subprocess.PIPE if quiet else None,
            stderr=subprocess.PIPE if quiet else None,
            env=full_env,
            cwd=cwd,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise LocalkubeError(f"command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LocalkubeError(f"`{' '.join(argv)}` did not finish in {timeout:.0f}s") from exc
    out = (proc.stdout or b"").decode(errors="replace")
    err = (proc.stderr or b"").decode(errors="replace")
    if check and proc.returncode != 0:
        detail = (err or out).strip()[-3000:]
        raise LocalkubeError(
            f"`{' '.join(argv)}` failed with exit code {proc.returncode}: {detail}"
        )
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


@contextlib.contextmanager
def exclusive(lock: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` (waiting, and saying so, if another holds it)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"localkube: waiting for another {what} to finish ({lock})", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pids_running(executable: Path, *, argv_contains: str = "") -> list[int]:
    """Every live process running ``executable`` (and naming ``argv_contains``, if given)."""
    found = []
    target = str(executable)
    for pid in all_pids():
        try:
            if os.readlink(f"/proc/{pid}/exe") != target:
                continue
        except OSError:
            continue
        if argv_contains and not any(argv_contains in a for a in cmdline(pid)):
            continue
        if alive(pid):
            found.append(pid)
    return found
