"""The host: preflight checks, its address, listening ports, and the kernel settings the
cluster changes (recorded before ``up`` and restored by ``down``)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
from pathlib import Path

from localkube import config
from localkube.errors import LocalkubeError
from localkube.process import cmdline, run

#: Kernel settings the kubelet, kube-proxy and the CNI bridge plugin may change.
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.conf.all.route_localnet",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    for name in SYSCTLS:
        try:
            values[name] = _sysctl_path(name).read_text().strip()
        except OSError:
            continue
    return values


def write_sysctl(name: str, value: str) -> None:
    try:
        _sysctl_path(name).write_text(value + "\n")
    except OSError as exc:
        raise LocalkubeError(f"cannot set {name}={value}: {exc}") from exc


def restore_sysctls(values: dict[str, str]) -> None:
    for name, value in values.items():
        path = _sysctl_path(name)
        try:
            if path.read_text().strip() != value:
                path.write_text(value + "\n")
        except OSError:
            continue


def link_names() -> list[str]:
    return sorted(p.name for p in Path("/sys/class/net").iterdir())


def record_baseline(path: Path) -> None:
    """What the host looked like before the cluster: kernel settings and network links."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sysctls": read_sysctls(), "links": link_names()}, indent=2))


def load_baseline(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_platform() -> None:
    if platform.system() != "Linux":
        raise LocalkubeError(
            f"localkube runs a real Kubernetes node and needs Linux; this is {platform.system()}."
            " Point the tests at another cluster with SHIPWAY_E2E_KUBECONFIG instead."
        )
    if os.geteuid() != 0:
        raise LocalkubeError(
            "localkube must run as root (it starts containerd and the kubelet, sets up"
            " iptables and network bridges): run it with sudo, or as root."
        )


def check_commands() -> None:
    missing = {
        name: pkg for name, pkg in config.HOST_COMMANDS.items() if shutil.which(name) is None
    }
    if not config.CNI_BIN_DIR.joinpath("bridge").exists():
        missing["CNI bridge plugin"] = "containernetworking-plugins"
    if missing:
        pkgs = sorted(set(missing.values()))
        hint = (
            f" Install them with `make host-deps` (as root: apt-get install -y {' '.join(pkgs)})"
            if pkgs
            else ""
        )
        raise LocalkubeError(f"missing host commands: {', '.join(sorted(missing))}.{hint}")
    if not Path("/sys/fs/cgroup").is_dir():
        raise LocalkubeError("no cgroup filesystem at /sys/fs/cgroup")


def cgroup_v1() -> bool:
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def node_ip() -> str:
    """The IPv4 address of the interface holding the default route."""
    out = run(["ip", "-4", "-j", "route", "show", "default"], check=False).stdout
    routes = json.loads(out or "[]")
    for route in routes:
        dev = route.get("dev")
        if route.get("prefsrc"):
            return str(route["prefsrc"])
        if dev:
            addrs = json.loads(run(["ip", "-4", "-j", "addr", "show", "dev", dev]).stdout)
            for link in addrs:
                for info in link.get("addr_info", []):
                    if info.get("family") == "inet":
                        return str(info["local"])
    raise LocalkubeError(
        "cannot find this host's IPv4 address (no default route): the node needs one"
    )


def hostname() -> str:
    return socket.gethostname()


def _listening_inodes() -> dict[int, int]:
    """port -> socket inode of every TCP socket in LISTEN state (IPv4 and IPv6)."""
    result: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A":
                result[int(cols[1].rsplit(":", 1)[1], 16)] = int(cols[9])
    return result


def _socket_owner(inode: int) -> str:
    target = f"socket:[{inode}]"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) == target:
                    argv = cmdline(int(proc.name))
                    name = Path(argv[0]).name if argv else "?"
                    return f"{name} (pid {proc.name})"
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return "an unknown process"


def check_ports(ports: dict[int, str]) -> None:
    listening = _listening_inodes()
    taken = [
        f"port {port} ({what}) is taken by {_socket_owner(listening[port])}"
        for port, what in sorted(ports.items())
        if port in listening
    ]
    if taken:
        raise LocalkubeError(
            "cannot start the cluster: " + "; ".join(taken) + ". Stop that process first."
        )
