"""``down``: stop everything and leave no process, mount, iptables rule, veth, bridge,
network namespace, cgroup, log link or kernel setting of the cluster behind; and ``verify``,
which proves it."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from localkube import config
from localkube.cluster import host, runtime
from localkube.config import Paths
from localkube.process import all_pids, cmdline, exclusive, run, terminate

CHAIN_PREFIXES = ("KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle", "raw")
NETNS_DIR = Path("/run/netns")
CONTAINER_LOG_LINKS = Path("/var/log/containers")
CNI_CACHE = Path("/var/lib/cni")
#: Host programs of the node, ours when their command line names our socket or state.
NODE_PROGRAMS = {"containerd", "containerd-shim-runc-v2", "runc", "nsenter", "unshare"}


def _cgroup_roots() -> list[Path]:
    """Every cgroup hierarchy mount (each v1 controller, and the v2/unified one)."""
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] in ("cgroup", "cgroup2"):
            roots.append(Path(line.split()[4]))
    return roots


def _kubepods_dirs() -> list[Path]:
    return [d for root in _cgroup_roots() for d in root.glob("kubepods*") if d.is_dir()]


def _cgroup_dirs(top: Path) -> list[Path]:
    """``top`` and every cgroup under it, deepest first. Not ``Path.rglob``: a pod's cgroup
    removed by the kubelet or the runtime while the tree is walked raised FileNotFoundError
    there and stopped the teardown half way; ``os.walk`` skips a directory that is gone."""
    found = [Path(dirpath) for dirpath, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: -len(p.parts))


def _cgroup_pids(top: Path) -> set[int]:
    pids: set[int] = set()
    for cgroup in _cgroup_dirs(top):
        try:
            pids.update(int(p) for p in (cgroup / "cgroup.procs").read_text().split())
        except (OSError, ValueError):
            continue
    return pids


def pod_pids() -> set[int]:
    pids: set[int] = set()
    for d in _kubepods_dirs():
        pids |= _cgroup_pids(d)
    return pids


def _our_process(pid: int, paths: Paths) -> bool:
    """A process of the cluster: one of our binaries, or containerd/shim on our socket."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    if exe.startswith(str(paths.cache) + "/"):
        return True
    if Path(exe).name not in NODE_PROGRAMS:
        return False
    sock, state = str(paths.containerd_socket), str(paths.state)
    return any(sock in a or a.startswith(state) for a in cmdline(pid))


def stray_processes(paths: Paths) -> list[int]:
    me = os.getpid()
    return [p for p in all_pids() if p != me and _our_process(p, paths)]


def _kill_pods() -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = pod_pids()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _rmdir_tree(top: Path) -> None:
    for d in _cgroup_dirs(top):  # deepest first, ``top`` last
        with contextlib.suppress(OSError):
            d.rmdir()


# -- iptables ------------------------------------------------------------------------------


def _iptables_rules(binary: str, table: str) -> list[str]:
    out = run([binary, "-w", "-t", table, "-S"], check=False)
    return out.stdout.splitlines() if out.returncode == 0 else []


def _ours(token: str) -> bool:
    return token.startswith(CHAIN_PREFIXES)


def clean_iptables() -> None:
    for binary in ("iptables", "ip6tables"):
        for table in TABLES:
            rules = _iptables_rules(binary, table)
            chains = [r.split()[1] for r in rules if r.startswith("-N ") and _ours(r.split()[1])]
            # Rules of the other chains that jump to ours or carry our comments: delete by
            # number, last first.
            per_chain: dict[str, int] = {}
            doomed: list[tuple[str, int]] = []
            for rule in rules:
                if not rule.startswith("-A "):
                    continue
                parts = shlex.split(rule)
                chain = parts[1]
                per_chain[chain] = per_chain.get(chain, 0) + 1
                if _ours(chain):
                    continue
                if any(_ours(t) for t in parts[2:]) or f'"{config.CNI_NETWORK}"' in rule:
                    doomed.append((chain, per_chain[chain]))
            for chain, num in reversed(doomed):
                run([binary, "-w", "-t", table, "-D", chain, str(num)], check=False)
            for chain in chains:
                run([binary, "-w", "-t", table, "-F", chain], check=False)
            for chain in chains:
                run([binary, "-w", "-t", table, "-X", chain], check=False)


def iptables_leftovers() -> list[str]:
    found = []
    for binary in ("iptables", "ip6tables"):
        for table in TABLES:
            for rule in _iptables_rules(binary, table):
                if any(p in rule for p in CHAIN_PREFIXES) or f'"{config.CNI_NETWORK}"' in rule:
                    found.append(f"{binary} -t {table}: {rule}")
    return found


# -- mounts, links, network namespaces -----------------------------------------------------


def _mountpoints() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Octal escapes (\040 for a space) in mount points.
        points.append(line.split()[4].encode().decode("unicode_escape"))
    return points


def _our_mount(point: str, paths: Paths) -> bool:
    # The cache too: image builds chroot there, in a private mount namespace (baseimages).
    roots = (str(paths.state), str(paths.run), str(paths.cache), str(NETNS_DIR / "cni-"))
    return any(point == r or point.startswith(r if r.endswith("-") else r + "/") for r in roots)


def our_mounts(paths: Paths) -> list[str]:
    return [m for m in _mountpoints() if _our_mount(m, paths)]


def _unmount_all(paths: Paths) -> None:
    for point in sorted(our_mounts(paths), key=len, reverse=True):
        run(["umount", "-l", point], check=False)


def _veths_on_bridge() -> list[str]:
    bridge = Path("/sys/class/net") / config.BRIDGE / "brif"
    return sorted(p.name for p in bridge.iterdir()) if bridge.is_dir() else []


def _veths() -> set[str]:
    out = run(["ip", "-o", "link", "show", "type", "veth"], check=False).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _new_links(paths: Paths) -> list[str]:
    """Our bridge, and every veth that was not there before ``up``."""
    baseline = host.load_baseline(paths.host_baseline).get("links")
    before = set(baseline) if isinstance(baseline, list) else set()
    new = [config.BRIDGE] if (Path("/sys/class/net") / config.BRIDGE).exists() else []
    return new + sorted(v for v in _veths() if v not in before)


def _our_netns_files() -> Iterator[Path]:
    """CNI network namespace pins that no live namespace holds (ours, after down)."""
    if not NETNS_DIR.is_dir():
        return
    mounted = set(_mountpoints())
    for f in NETNS_DIR.glob("cni-*"):
        if str(f) not in mounted:
            yield f


def clean_network(paths: Paths) -> None:
    for veth in _veths_on_bridge():
        run(["ip", "link", "delete", veth], check=False)
    if (Path("/sys/class/net") / config.BRIDGE).exists():
        run(["ip", "link", "delete", config.BRIDGE], check=False)
    for name in _new_links(paths):
        if name != config.BRIDGE:
            run(["ip", "link", "delete", name], check=False)
    for f in _our_netns_files():
        f.unlink(missing_ok=True)
    for sub in ("results", "cache"):
        d = CNI_CACHE / sub
        if d.is_dir():
            for f in d.glob(f"{config.CNI_NETWORK}-*"):
                f.unlink(missing_ok=True)
    clean_iptables()


def container_log_links(paths: Paths, links: Path = CONTAINER_LOG_LINKS) -> list[Path]:
    """The kubelet's links to our containers' logs: ours when they point into our
    ``podLogsDir`` (the kubelet always links from /var/log/containers)."""
    try:
        entries = list(links.iterdir())
    except FileNotFoundError:
        return []
    root = f"{paths.pod_logs}/"
    return [e for e in entries if e.is_symlink() and os.readlink(e).startswith(root)]


# -- down and verify ------------------------------------------------------------------------


def down(paths: Paths, *, quiet: bool = False) -> None:
    """Stop the cluster and clean the host (waiting for a concurrent ``up`` to finish)."""
    with exclusive(paths.lock, "localkube up/down"):
        down_unlocked(paths, quiet=quiet)


def down_unlocked(paths: Paths, *, quiet: bool = False) -> None:
    say = (lambda _m: None) if quiet else runtime.log
    svc = {s.name: s for s in runtime.services(paths)}
    say("stopping kwok, kube-proxy and the kubelet")
    for name in ("kwok", "kube-proxy", "kubelet"):
        svc[name].stop(timeout=15)
    runtime.service(paths, "registry-token").stop(timeout=10)  # token auth's, when on
    say("stopping every pod's processes")
    _kill_pods()
    say("stopping containerd")
    svc["containerd"].stop(timeout=15)
    terminate(stray_processes(paths), timeout=10, sig=signal.SIGKILL)
    svc["node-mounts"].stop(timeout=5)
    say("stopping the control plane")
    for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
        svc[name].stop(timeout=20)
    terminate(stray_processes(paths), timeout=10)
    _kill_pods()
    say("removing network bridge, veths, network namespaces and iptables rules")
    _unmount_all(paths)
    clean_network(paths)
    for d in _kubepods_dirs():
        _rmdir_tree(d)
    for link in container_log_links(paths):
        link.unlink(missing_ok=True)
    baseline = host.load_baseline(paths.host_baseline).get("sysctls")
    if isinstance(baseline, dict):
        host.restore_sysctls({str(k): str(v) for k, v in baseline.items()})
    runtime.wipe(paths)
    say("the cluster is down")


def verify(paths: Paths) -> list[str]:
    """What the cluster left on the host; empty when the host is clean."""
    problems: list[str] = []
    for pid in stray_processes(paths):
        problems.append(f"process {pid}: {' '.join(cmdline(pid))[:200]}")
    for pid in pod_pids():
        problems.append(f"pod process {pid}: {' '.join(cmdline(pid))[:200]}")
    problems += [f"mount: {m}" for m in our_mounts(paths)]
    problems += [f"iptables rule: {r}" for r in iptables_leftovers()]
    problems += [f"network link: {n}" for n in _new_links(paths)]
    problems += [f"network namespace: {f}" for f in _our_netns_files()]
    problems += [f"cgroup: {d}" for d in _kubepods_dirs()]
    problems += [f"log link: {link}" for link in container_log_links(paths)]
    baseline = host.load_baseline(paths.host_baseline).get("sysctls")
    if isinstance(baseline, dict):
        now = host.read_sysctls()
        problems += [
            f"sysctl {k} is {now.get(k)!r}, was {v!r}"
            for k, v in baseline.items()
            if now.get(k) != v
        ]
    for leftover in (paths.run, paths.etcd_data, paths.kubelet_root, paths.containerd_root):
        if leftover.exists():
            problems.append(f"directory: {leftover}")
    return problems
