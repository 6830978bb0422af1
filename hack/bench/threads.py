"""The operator's CPU by thread (the event loop, the API call pool, the Event senders, the pod
watch), from the kernel's per-thread counters, named after py-spy's profile.

py-spy's samples are not CPU: a thread blocked in an SSL read waiting for the API server is
sampled as busy (in the 1000 x 5 profile of 7 Dec, 72% of the API threads' samples were
`SSLSocket.read`), so shares of samples overstate the threads that wait on the network.
``/proc/PID/task/TID/stat`` counts what each thread actually ran; py-spy's speedscope output
names each thread id (Python 3.11 does not name its threads for the kernel).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
_PROFILE_NAME = re.compile(r'^Thread (\d+) "([^"]*)"')
_NUMBERED = re.compile(r"^(.*?)[_-]\d+$")


def stat_cpu_seconds(stat: str) -> float:
    """utime + stime of one /proc stat line, in seconds."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each live thread of ``pid``, by thread id."""
    seconds: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                seconds[int(task.name)] = stat_cpu_seconds((task / "stat").read_text())
    return seconds


def profile_thread_names(speedscope: Path) -> dict[int, str]:
    """Thread id → Python thread name, from a py-spy speedscope file's profile names."""
    names: dict[int, str] = {}
    with contextlib.suppress(OSError, ValueError):
        for profile in json.loads(speedscope.read_text()).get("profiles", []):
            found = _PROFILE_NAME.match(str(profile.get("name", "")))
            if found and found.group(2):  # py-spy sometimes reads a name as "": unnamed
                names[int(found.group(1))] = found.group(2)
    return names


def thread_group(name: str) -> str:
    """A pool's threads as one: ``kube_3`` → ``kube``, ``event_0`` → ``event``,
    ``podwatch-bench-scale-1a2b3c`` → ``podwatch``."""
    numbered = _NUMBERED.match(name)
    if numbered:
        name = numbered.group(1)
    return name.split("-", 1)[0]


def cpu_by_group(
    before: dict[int, float], after: dict[int, float], names: dict[int, str]
) -> dict[str, float]:
    """CPU seconds each thread group used between ``before`` and ``after`` (rounded, largest
    first); threads py-spy never sampled are ``unnamed``. A thread started in between
    counts from zero; one that ended in between is not counted (the kernel forgets it)."""
    groups: dict[str, float] = {}
    for tid, seconds in after.items():
        group = thread_group(names[tid]) if tid in names else "unnamed"
        groups[group] = groups.get(group, 0.0) + seconds - before.get(tid, 0.0)
    return {k: round(v, 2) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}
