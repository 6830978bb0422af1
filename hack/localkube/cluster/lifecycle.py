"""Start and inspect the single-node cluster (``cleanup`` stops it).

Control plane (host processes): etcd, kube-apiserver, kube-controller-manager,
kube-scheduler. Node: containerd and the kubelet run inside a private mount namespace held
by a tiny ``node-mounts`` process, so every mount they make (overlay rootfs, volume tmpfs,
network namespace pins) vanishes with them and never leaks into the host; kube-proxy
(iptables mode) runs on the host. Pods get their network from the CNI bridge plugin with
host-local IPAM and IP masquerading. In the cluster: the local-path StorageClass, CoreDNS
(cluster DNS) and a registry that mirrors docker.io (``addons``, ``mirror``).

``up`` converges: it starts what is missing, restarts a component whose command line or
configuration files changed, and applies the add-ons, so a running cluster picks up new
components without ``down``.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import string
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from localkube import config
from localkube.addons import rollout as addons
from localkube.addons.registry import auth as authregistry
from localkube.addons.registry import mirror
from localkube.addons.registry import server as registry
from localkube.cluster import cleanup, host, pki, servicenet
from localkube.cluster.components import (
    Layout,
    apiserver_argv,
    controller_manager_argv,
    etcd_argv,
    kube_proxy_argv,
    kubelet_argv,
    scheduler_argv,
    write_configs,
)
from localkube.cluster.runtime import (  # re-exported: other tools use them as cluster.<name>
    NODE_MOUNTS_HOLDER,
    SERVICE_NAMES,
    admin_tls,
    any_running,
    http_ok,
    in_node_mounts,
    insecure_tls,
    is_up,
    kubectl,
    kubectl_json,
    log,
    node_mounts_ready,
    node_ready,
    service,
    services,
    wait_for,
    wipe,
)
from localkube.config import Paths
from localkube.images import recipes as imageset
from localkube.process import exclusive, pids_running, run, terminate
from localkube.toolchain import build

__all__ = [
    "SERVICE_NAMES",
    "any_running",
    "http_ok",
    "is_up",
    "kubectl",
    "kubectl_json",
    "log",
    "node_ready",
    "service",
    "services",
    "status",
    "up",
    "wait_for",
    "wipe",
]

MANIFESTS = Path(__file__).parent / "manifests"
#: What ``up --core-only`` builds: the cluster and its add-ons, not helm or kwok.
CORE_TARGETS = ("kubernetes", "pause", "local-path-provisioner", "coredns", "registry", "crane")
#: What each ``up --for`` needs built. ``all`` (``make test``, ``make cluster-up``): everything.
#: ``demo``: no kwok (fake nodes are for tests and benchmarks) and no helm (BuildKit's objects
#: are the chart's rendering kept in the tree, :mod:`localkube.addons.buildkit.manifest`).
PROFILES: dict[str, tuple[str, ...]] = {
    "all": tuple(build.TARGETS),
    "demo": (*CORE_TARGETS, "buildkit"),
    "core": CORE_TARGETS,
}
#: The configuration files each component reads (a change restarts it).
CONFIG_FILES = {
    "containerd": ("containerd.toml",),
    "kubelet": ("kubelet-config.json", "kubelet.kubeconfig"),
    "kube-proxy": ("kube-proxy-config.json", "kube-proxy.kubeconfig"),
}


def config_stamp(files: Sequence[Path]) -> str:
    """A digest of the configuration files a component reads (missing ones count as empty)."""
    h = hashlib.sha256()
    for f in files:
        h.update(str(f).encode() + b"\0")
        h.update(f.read_bytes() if f.is_file() else b"")
    return h.hexdigest()[:16]


def outdated(recorded: dict[str, object], argv: list[str], stamp: str) -> str:
    """Why a running component must restart ("" if it need not): its command line or the
    configuration files it reads changed since it started."""
    if recorded.get("argv") not in (None, argv):
        return "its command line changed"
    if stamp and recorded.get("stamp", "") != stamp:
        return "its configuration changed"
    return ""


def _ensure(
    paths: Paths,
    name: str,
    argv: Callable[[], list[str]],
    ready: Callable[[], bool],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
) -> None:
    svc = service(paths, name)
    files = [paths.etc / f for f in CONFIG_FILES.get(name, ())]
    stamp = config_stamp(files) if files else ""
    command = argv()
    if svc.running():
        why = outdated(svc.recorded(), command, stamp)
        if not why:
            if ready():
                return
            wait_for(f"{name} to be ready", ready, timeout=timeout, svc=svc)
            return
        log(f"restarting {name}: {why}")
        svc.stop(timeout=20)
    _stop_strays(paths, command)
    log(f"starting {name}")
    svc.start(command, stamp=stamp, env=env)
    wait_for(f"{name} to be ready", ready, timeout=timeout, svc=svc)


def _stop_strays(paths: Paths, command: list[str]) -> None:
    """Stop untracked copies of a component (whose pidfile was lost) before starting it."""
    program = command[command.index("--") + 1] if command[0] == "nsenter" else command[0]
    found = shutil.which(program)
    if found is None or program == "unshare":
        return
    strays = pids_running(Path(found).resolve(), argv_contains=str(paths.state))
    if strays:
        log(f"stopping {len(strays)} untracked {Path(program).name} process(es)")
        terminate(strays, timeout=15)


def up(paths: Paths, *, build_all: bool = True, profile: str | None = None) -> None:
    """Bring the cluster up, reusing whatever part of it already runs.

    ``profile`` (a key of :data:`PROFILES`) says what to build; without it, ``build_all``
    chooses ``all`` or ``core``. Concurrent calls (several test sessions, say) take turns;
    the later ones find it up.
    """
    targets = PROFILES[profile or ("all" if build_all else "core")]
    with exclusive(paths.lock, "localkube up/down"):
        _up(paths, targets)


def _up(paths: Paths, targets: tuple[str, ...]) -> None:
    started = time.monotonic()
    host.check_platform()
    host.check_commands()
    if not any_running(paths):
        leftovers = (paths.run, paths.etcd_data, paths.kubelet_root, paths.containerd_root)
        if any(p.exists() for p in leftovers):
            log("cleaning up what a previous cluster left behind")
            cleanup.down_unlocked(paths, quiet=True)
        host.check_ports(config.PORTS)
        host.record_baseline(paths.host_baseline)
        for stale in paths.logs.glob("*.log"):
            stale.unlink()
        shutil.rmtree(paths.pod_logs, ignore_errors=True)

    build.build_all(paths, targets)
    imageset.ensure_all(paths)  # archives only; imported once containerd runs

    node_ip = host.node_ip()
    for d in (paths.state, paths.run, paths.etc, paths.pids, paths.logs, paths.storage):
        d.mkdir(parents=True, exist_ok=True)
    paths.state.chmod(0o711)
    lay = Layout(paths, pki.ensure(paths.pki, node_ip, host.hostname()), node_ip)
    write_configs(lay)
    _start_components(paths, lay)
    install_storage(paths)
    wait_for(
        "the default service account",
        lambda: bool(kubectl(paths, "get", "serviceaccount", "default", "-n", "default",
                             "--ignore-not-found", "-o", "name")),
        timeout=60,
    )  # fmt: skip
    addons.ensure_dns(paths)
    _registry_auth(paths, lay)
    addons.ensure_registry(paths, lay.pki)
    authregistry.ensure(paths)  # where push steps push in the e2e tests and the demo
    mirror.push_all(paths)
    if "buildkit" in targets:  # BuildKit (issue #14): the chart's objects
        from localkube.addons.buildkit import builder as buildkit

        buildkit.up(paths)
    log(f"the cluster is up ({time.monotonic() - started:.0f}s)")


def _registry_auth(paths: Paths, lay: Layout) -> None:
    """Token auth for the registry unless ``SHIPWAY_LOCALKUBE_REGISTRY_AUTH=none`` turns it off
    (``registrytoken``): the token service on the host, its name in the node's mount
    namespace, its Service and the operator's key; off, nothing but localkube's crane going
    back to no credential."""
    from localkube.addons.registry import token as rt

    if not rt.wanted():
        rt.turn_off(paths)
        return
    rt.prepare(paths, lay.pki)
    if not service(paths, rt.NAME).running():
        host.check_ports({rt.PORT: "the registry's token service"})
    tls = ssl.create_default_context(cafile=str(lay.pki.ca_crt))
    tls.check_hostname = False  # asked at 127.0.0.1; the certificate names the Service
    _ensure(
        paths, rt.NAME, lambda: rt.argv(paths, lay.pki),
        lambda: http_ok(rt.health_url(), context=tls), timeout=30, env=rt.env(),
    )  # fmt: skip
    hosts = rt.node_hosts_file(paths)
    hosts.write_text(rt.node_hosts(Path("/etc/hosts").read_text()))
    hosts.chmod(0o644)
    mounted = run(in_node_mounts(paths, ["grep", "-qF", rt.HOST, "/etc/hosts"]), check=False)
    if mounted.returncode != 0:
        run(in_node_mounts(paths, ["mount", "--bind", str(hosts), "/etc/hosts"]))
    addons.apply(
        paths,
        rt.manifests(lay.node_ip, rt.key_file(paths).read_bytes()),
        "the registry's token service",
    )
    log(f"the registry wants tokens of {rt.REALM} (per-namespace rights)")


def _start_components(paths: Paths, lay: Layout) -> None:
    tls = admin_tls(paths)
    insecure = insecure_tls()
    _ensure(
        paths, "etcd", lambda: etcd_argv(lay),
        lambda: http_ok("http://127.0.0.1:2381/health"), timeout=60,
    )  # fmt: skip
    api = f"https://127.0.0.1:{config.APISERVER_PORT}"
    _ensure(
        paths, "kube-apiserver", lambda: apiserver_argv(lay),
        lambda: http_ok(f"{api}/readyz", context=tls), timeout=120,
    )  # fmt: skip
    _ensure(
        paths, "kube-controller-manager", lambda: controller_manager_argv(lay),
        lambda: http_ok("https://127.0.0.1:10257/healthz", context=insecure), timeout=60,
    )  # fmt: skip
    _ensure(
        paths, "kube-scheduler", lambda: scheduler_argv(lay),
        lambda: http_ok("https://127.0.0.1:10259/healthz", context=insecure), timeout=60,
    )  # fmt: skip

    # The node: its private mount namespace, containerd, images, kubelet, kube-proxy.
    _ensure(
        paths, "node-mounts",
        lambda: ["unshare", "--mount", "--propagation", "private", "--",
                 "sh", "-c", f"mount --make-rshared / && exec {NODE_MOUNTS_HOLDER} infinity"],
        lambda: node_mounts_ready(paths), timeout=10,
    )  # fmt: skip
    paths.containerd_state.mkdir(parents=True, exist_ok=True)
    _ensure(
        paths, "containerd",
        lambda: in_node_mounts(paths, ["containerd", "--config", str(lay.conf("containerd.toml"))]),
        lambda: _containerd_ready(paths), timeout=60,
    )  # fmt: skip
    imageset.ensure_all(paths, import_into=paths.containerd_socket)
    # -- source (issue 12): the image of the operator's checkout and upload pods ----------
    from localkube.images import git as gitimages

    gitimages.ensure(paths, import_into=paths.containerd_socket, names=("git",))
    # ----------------------------------------------------------------------------------------
    _ensure(
        paths, "kubelet", lambda: in_node_mounts(paths, kubelet_argv(lay)),
        lambda: http_ok("http://127.0.0.1:10248/healthz"), timeout=90,
    )  # fmt: skip
    wait_for("the node to be Ready", lambda: node_ready(paths), timeout=120,
             svc=service(paths, "kubelet"))  # fmt: skip
    servicenet.install(lambda argv: run(["iptables", *argv], check=False).returncode)
    _ensure(
        paths, "kube-proxy", lambda: kube_proxy_argv(lay),
        lambda: http_ok("http://127.0.0.1:10256/healthz"), timeout=60,
    )  # fmt: skip


def _containerd_ready(paths: Paths) -> bool:
    if not paths.containerd_socket.exists():
        return False
    out = run(["ctr", "--address", str(paths.containerd_socket), "version"], check=False)
    return out.returncode == 0


def storage_manifest(paths: Paths) -> str:
    """The default StorageClass and its provisioner (``manifests/local-path-storage.yaml``),
    with a hash of what it is made of in the provisioner's pod template: the provisioner
    reads its helper pod's template only when it starts, so a change must restart it."""
    text = (MANIFESTS / "local-path-storage.yaml").read_text()
    values = {
        "image": config.LOCAL_PATH_IMAGE,
        "helper_image": config.BUSYBOX_IMAGE,
        "provisioner": config.PROVISIONER_NAME,
        "storage_class": config.STORAGE_CLASS,
        "binding_mode": config.STORAGE_BINDING_MODE,
        "storage_dir": str(paths.storage),
        "node": config.NODE_NAME,
    }
    digest = hashlib.sha256(repr((text, sorted(values.items()))).encode()).hexdigest()[:16]
    return string.Template(text).substitute(values, manifest_hash=digest)


def install_storage(paths: Paths) -> None:
    """Apply :func:`storage_manifest`, converging a running cluster: a class whose
    (immutable) binding mode changed is made again first (its volumes and claims stay)."""
    manifest = storage_manifest(paths)
    mode = kubectl(
        paths, "get", "storageclass", config.STORAGE_CLASS, "--ignore-not-found",
        "-o", "jsonpath={.volumeBindingMode}",
    )  # fmt: skip
    if mode and mode != config.STORAGE_BINDING_MODE:
        kubectl(paths, "delete", "storageclass", config.STORAGE_CLASS, "--wait=true")
    kubectl(paths, "apply", "-f", "-", input=manifest)
    kubectl(
        paths, "-n", "local-path-storage", "rollout", "status",
        "deployment/local-path-provisioner", "--timeout=180s",
    )  # fmt: skip


# -- status -------------------------------------------------------------------------------


def status(paths: Paths) -> tuple[bool, str]:
    lines = []
    for svc in services(paths):
        pid = svc.pid()
        if svc.name == "kwok" and pid is None:
            continue
        lines.append(f"  {svc.name:<24} {'running, pid ' + str(pid) if pid else 'stopped'}")
    healthy = is_up(paths)
    if healthy:
        for what, ns, name in (
            ("coredns (cluster DNS)", "kube-system", "coredns"),
            ("registry", config.SYSTEM_NAMESPACE, "registry"),
        ):
            ready = kubectl(
                paths, "-n", ns, "get", "deployment", name, "--ignore-not-found",
                "-o", "jsonpath={.status.readyReplicas}/{.spec.replicas}", check=False,
            )  # fmt: skip
            lines.append(f"  {what:<24} {'ready ' + ready if ready else 'not deployed'}")
        reachable = "answers" if addons.registry_ok(paths) else "does NOT answer"
        lines.append(f"  registry at {registry.URL} {reachable} from the node")
        nodes = kubectl(paths, "get", "nodes", "-o", "wide")
        lines.append("")
        lines.extend("  " + line for line in nodes.splitlines())
        lines.append("")
        lines.append(f"export KUBECONFIG={paths.kubeconfig}")
    head = "the cluster is up" if healthy else "the cluster is not (fully) running"
    return healthy, "\n".join([f"localkube: {head}", *lines])
