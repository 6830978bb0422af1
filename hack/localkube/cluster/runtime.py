"""What every lifecycle module shares: the component processes, waiting, kubectl.

``cluster`` (up, status), ``cleanup`` (down, verify), ``addons`` and ``kwok`` all import this
module and none of them imports another's lifecycle, so there is no import cycle.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localkube import config
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.process import Service, run
from localkube.toolchain import build

#: Startup order; ``down`` stops them in reverse (after killing the pods).
SERVICE_NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "node-mounts",
    "containerd",
    "kubelet",
    "kube-proxy",
)


def log(msg: str) -> None:
    print(f"localkube: {msg}", flush=True)


def service(paths: Paths, name: str) -> Service:
    return Service(name, paths.pids, paths.logs)


def services(paths: Paths) -> list[Service]:
    return [service(paths, n) for n in (*SERVICE_NAMES, "kwok")]


# -- waiting ------------------------------------------------------------------------------


def wait_for(
    what: str,
    check: Callable[[], bool],
    *,
    timeout: float,
    svc: Service | None = None,
    interval: float = 0.5,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll ``check`` until true; fail after ``timeout`` with the log (or ``detail``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if svc is not None and not svc.running():
            raise LocalkubeError(f"{svc.name} exited while waiting for {what}:\n{svc.log_tail()}")
        time.sleep(interval)
    tail = f"\n{svc.name} log ({svc.logfile}):\n{svc.log_tail()}" if svc else ""
    if detail is not None:
        tail += "\n" + detail()
    raise LocalkubeError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


def http_ok(url: str, *, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def admin_tls(paths: Paths) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(paths.pki / "ca.crt"))
    ctx.load_cert_chain(str(paths.pki / "admin.crt"), str(paths.pki / "admin.key"))
    return ctx


def insecure_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# -- kubectl ------------------------------------------------------------------------------


def kubectl(
    paths: Paths,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 300,
) -> str:
    """Run the cluster's kubectl as admin; never longer than ``timeout`` seconds."""
    argv = [str(build.binary(paths, "kubectl")), "--kubeconfig", str(paths.kubeconfig), *args]
    return run(argv, input=input, check=check, timeout=timeout).stdout


def kubectl_json(paths: Paths, *args: str) -> Any:
    return json.loads(kubectl(paths, *args, "-o", "json"))


def node_ready(paths: Paths) -> bool:
    out = kubectl(paths, "get", "node", config.NODE_NAME, "-o", "json", check=False)
    if not out:
        return False
    node = json.loads(out)
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


#: What the holder runs once its namespace is made and its root shared (``exec sleep``).
NODE_MOUNTS_HOLDER = "sleep"


def holder_state(pid: int, proc: Path = Path("/proc")) -> str:
    """Why the node-mounts holder ``pid`` cannot be entered yet ("" once it can).

    ``unshare`` makes the namespace a moment after it starts, and the shell shares ``/``
    after that; a process entering ``/proc/<pid>/ns/mnt`` any earlier lands in the host's
    namespace. containerd did once, on a loaded machine: the kubelet's tmpfs of every
    service-account token then never reached the containers (the local-path-provisioner
    crash-looped on a missing in-cluster config)."""
    try:
        theirs = os.readlink(proc / str(pid) / "ns" / "mnt")
        ours = os.readlink(proc / "self" / "ns" / "mnt")
        comm = (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return f"its process {pid} is gone"
    if theirs == ours:
        return f"its process {pid} has not made its own mount namespace yet"
    if comm != NODE_MOUNTS_HOLDER:
        return f"its process {pid} has not shared its root mount yet (it runs {comm!r})"
    return ""


def node_mounts_ready(paths: Paths) -> bool:
    pid = service(paths, "node-mounts").pid()
    return pid is not None and not holder_state(pid)


def in_node_mounts(paths: Paths, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the node's mount namespace; refused while the holder is not
    ready, so nothing can slip into the host's namespace instead."""
    pid = service(paths, "node-mounts").pid()
    if pid is None:
        raise LocalkubeError("the node's mount namespace holder is not running")
    why = holder_state(pid)
    if why:
        raise LocalkubeError(f"the node's mount namespace holder is not ready: {why}")
    return ["nsenter", f"--mount=/proc/{pid}/ns/mnt", "--", *argv]


# -- state --------------------------------------------------------------------------------


def is_up(paths: Paths) -> bool:
    """Every component runs and the API server answers ready."""
    if not all(service(paths, n).running() for n in SERVICE_NAMES):
        return False
    url = f"https://127.0.0.1:{config.APISERVER_PORT}/readyz"
    return paths.kubeconfig.exists() and http_ok(url, context=admin_tls(paths))


def any_running(paths: Paths) -> bool:
    return any(s.running() for s in services(paths))


def wipe(paths: Paths) -> None:
    """Remove the state (but the logs and the host baseline) and the run directory."""
    keep = {paths.logs, paths.host_baseline}
    if paths.state.exists():
        for child in paths.state.iterdir():
            if child in keep:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    if paths.run.exists():
        shutil.rmtree(paths.run)
