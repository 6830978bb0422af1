"""Start, inspect and stop the single-node cluster.

Control plane (host processes): etcd, kube-apiserver, kube-controller-manager,
kube-scheduler. Node: containerd and the kubelet run inside a private mount namespace held
by a tiny ``node-mounts`` process, so every mount they make (overlay rootfs, volume tmpfs,
network namespace pins) vanishes with them and never leaks into the host; kube-proxy
(iptables mode) runs on the host. Pods get their network from the CNI bridge plugin with
host-local IPAM and IP masquerading.
"""

from __future__ import annotations

import json
import shutil
import ssl
import string
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localkube import build, config, host, imageset, kubeconfig, pki
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.process import Service, exclusive, pids_running, run, terminate

MANIFESTS = Path(__file__).parent / "manifests"
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
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if svc is not None and not svc.running():
            raise LocalkubeError(f"{svc.name} exited while waiting for {what}:\n{svc.log_tail()}")
        time.sleep(interval)
    tail = f"\n{svc.name} log ({svc.logfile}):\n{svc.log_tail()}" if svc else ""
    raise LocalkubeError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


def http_ok(url: str, *, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _admin_tls(paths: Paths) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(paths.pki / "ca.crt"))
    ctx.load_cert_chain(str(paths.pki / "admin.crt"), str(paths.pki / "admin.key"))
    return ctx


def _insecure_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# -- kubectl ------------------------------------------------------------------------------


def kubectl(paths: Paths, *args: str, input: str | None = None, check: bool = True) -> str:
    argv = [str(build.binary(paths, "kubectl")), "--kubeconfig", str(paths.kubeconfig), *args]
    return run(argv, input=input, check=check).stdout


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


# -- configuration files ------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Everything ``up`` derives from the paths and the host."""

    paths: Paths
    pki: pki.Pki
    node_ip: str

    def conf(self, name: str) -> Path:
        return self.paths.etc / name

    def bin(self, name: str) -> str:
        return str(build.binary(self.paths, name))


def write_configs(lay: Layout) -> None:
    p, k = lay.paths, lay.pki
    p.etc.mkdir(parents=True, exist_ok=True)
    local = f"https://127.0.0.1:{config.APISERVER_PORT}"
    for name, cert, user in (
        ("admin", "admin", "kubernetes-admin"),
        ("controller-manager", "controller-manager", "system:kube-controller-manager"),
        ("scheduler", "scheduler", "system:kube-scheduler"),
        ("kube-proxy", "kube-proxy", "system:kube-proxy"),
        ("kubelet", "kubelet-client", f"system:node:{config.NODE_NAME}"),
        ("kwok", "kwok", "localkube-kwok"),
    ):
        target = p.kubeconfig if name == "admin" else lay.conf(f"{name}.kubeconfig")
        kubeconfig.write(
            target, server=local, ca=k.ca_crt, cert=k.crt(cert), key=k.key(cert), user=user
        )
    _write_json(lay.conf("kubelet-config.json"), kubelet_config(lay))
    _write_json(lay.conf("kube-proxy-config.json"), kube_proxy_config(lay))
    lay.conf("containerd.toml").write_text(containerd_config(p))
    p.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    _write_json(p.cni_conf_dir / "10-localkube.conflist", cni_config(p))


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n")


def kubelet_config(lay: Layout) -> dict[str, Any]:
    k = lay.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 hosts (this one is hybrid) need this from 1.35 on.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{lay.paths.containerd_socket}",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(k.ca_crt)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(k.crt("kubelet-server")),
        "tlsPrivateKeyFile": str(k.key("kubelet-server")),
        "address": "0.0.0.0",
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "clusterDomain": config.CLUSTER_DOMAIN,
        "resolvConf": "/etc/resolv.conf",
        "failSwapOn": False,
        "rotateCertificates": False,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "containerLogMaxSize": "10Mi",
        "maxPods": 110,
        "protectKernelDefaults": False,
        # Not below 0: see restrict_oom_score_adj in the containerd config.
        "oomScoreAdj": 0,
    }


def kube_proxy_config(lay: Layout) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(lay.conf("kube-proxy.kubeconfig"))},
        "mode": "iptables",
        "clusterCIDR": config.CLUSTER_CIDR,
        "hostnameOverride": config.NODE_NAME,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "detectLocalMode": "ClusterCIDR",
        # Leave the host's conntrack and route_localnet settings alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
        "iptables": {"localhostNodePorts": False, "minSyncPeriod": "1s", "syncPeriod": "30s"},
        "oomScoreAdj": 0,
    }


def containerd_config(p: Paths) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{p.containerd_root}"
state = "{p.containerd_state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{p.containerd_socket}"

[{cri}]
  sandbox_image = "{config.PAUSE_IMAGE}"
  # Some hosts (this VM among them) withhold CAP_SYS_RESOURCE even from root, so no negative
  # OOM score can be set: clamp the sandbox's -998 and Guaranteed pods' -997 to ours.
  restrict_oom_score_adj = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{config.CNI_BIN_DIR}"
    conf_dir = "{p.cni_conf_dir}"
    max_conf_num = 1

[plugins."io.containerd.internal.v1.opt"]
  path = "{p.containerd_root}/opt"
"""


def cni_config(p: Paths) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": config.CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": config.BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": config.POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(p.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


# -- components ---------------------------------------------------------------------------


def _argv(binary: str, flags: dict[str, str | int | bool]) -> list[str]:
    argv = [binary]
    for key, value in flags.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        argv.append(f"--{key}={value}")
    return argv


def etcd_argv(lay: Layout) -> list[str]:
    k = lay.pki
    peer = "https://127.0.0.1:2380"
    return _argv(
        lay.bin("etcd"),
        {
            "name": config.NODE_NAME,
            "data-dir": str(lay.paths.etcd_data),
            "listen-client-urls": "https://127.0.0.1:2379",
            "advertise-client-urls": "https://127.0.0.1:2379",
            "listen-peer-urls": peer,
            "initial-advertise-peer-urls": peer,
            "initial-cluster": f"{config.NODE_NAME}={peer}",
            "initial-cluster-state": "new",
            "listen-metrics-urls": "http://127.0.0.1:2381",
            "cert-file": str(k.crt("etcd-server")),
            "key-file": str(k.key("etcd-server")),
            "trusted-ca-file": str(k.crt("etcd-ca")),
            "client-cert-auth": True,
            "peer-cert-file": str(k.crt("etcd-server")),
            "peer-key-file": str(k.key("etcd-server")),
            "peer-trusted-ca-file": str(k.crt("etcd-ca")),
            "peer-client-cert-auth": True,
            # A throwaway development cluster: trade durability for speed.
            "unsafe-no-fsync": True,
            "log-level": "warn",
        },
    )


def apiserver_argv(lay: Layout) -> list[str]:
    k = lay.pki
    return _argv(
        lay.bin("kube-apiserver"),
        {
            "advertise-address": lay.node_ip,
            "bind-address": "0.0.0.0",
            "secure-port": config.APISERVER_PORT,
            "etcd-servers": "https://127.0.0.1:2379",
            "etcd-cafile": str(k.crt("etcd-ca")),
            "etcd-certfile": str(k.crt("apiserver-etcd-client")),
            "etcd-keyfile": str(k.key("apiserver-etcd-client")),
            "client-ca-file": str(k.ca_crt),
            "tls-cert-file": str(k.crt("apiserver")),
            "tls-private-key-file": str(k.key("apiserver")),
            "kubelet-client-certificate": str(k.crt("apiserver-kubelet-client")),
            "kubelet-client-key": str(k.key("apiserver-kubelet-client")),
            "kubelet-certificate-authority": str(k.ca_crt),
            "kubelet-preferred-address-types": "InternalIP,Hostname",
            "authorization-mode": "Node,RBAC",
            "enable-admission-plugins": "NodeRestriction",
            "allow-privileged": True,
            "service-cluster-ip-range": config.SERVICE_CIDR,
            "service-account-issuer": f"https://kubernetes.default.svc.{config.CLUSTER_DOMAIN}",
            "service-account-key-file": str(k.sa_pub),
            "service-account-signing-key-file": str(k.sa_key),
            "profiling": False,
            "requestheader-client-ca-file": str(k.crt("front-proxy-ca")),
            "requestheader-allowed-names": "front-proxy-client",
            "requestheader-username-headers": "X-Remote-User",
            "requestheader-group-headers": "X-Remote-Group",
            "requestheader-extra-headers-prefix": "X-Remote-Extra-",
            "proxy-client-cert-file": str(k.crt("front-proxy-client")),
            "proxy-client-key-file": str(k.key("front-proxy-client")),
        },
    )


def controller_manager_argv(lay: Layout) -> list[str]:
    k, kc = lay.pki, str(lay.conf("controller-manager.kubeconfig"))
    return _argv(
        lay.bin("kube-controller-manager"),
        {
            "kubeconfig": kc,
            "authentication-kubeconfig": kc,
            "authorization-kubeconfig": kc,
            "bind-address": "127.0.0.1",
            "secure-port": 10257,
            "client-ca-file": str(k.ca_crt),
            "cluster-name": config.CLUSTER_NAME,
            "cluster-signing-cert-file": str(k.ca_crt),
            "cluster-signing-key-file": str(k.key("ca")),
            "root-ca-file": str(k.ca_crt),
            "service-account-private-key-file": str(k.sa_key),
            "use-service-account-credentials": True,
            "allocate-node-cidrs": True,
            "cluster-cidr": config.CLUSTER_CIDR,
            "node-cidr-mask-size": 24,
            "service-cluster-ip-range": config.SERVICE_CIDR,
            "leader-elect": False,
            "profiling": False,
        },
    )


def scheduler_argv(lay: Layout) -> list[str]:
    kc = str(lay.conf("scheduler.kubeconfig"))
    return _argv(
        lay.bin("kube-scheduler"),
        {
            "kubeconfig": kc,
            "authentication-kubeconfig": kc,
            "authorization-kubeconfig": kc,
            "bind-address": "127.0.0.1",
            "secure-port": 10259,
            "leader-elect": False,
            "profiling": False,
        },
    )


def kubelet_argv(lay: Layout) -> list[str]:
    return _argv(
        lay.bin("kubelet"),
        {
            "config": str(lay.conf("kubelet-config.json")),
            "kubeconfig": str(lay.conf("kubelet.kubeconfig")),
            "hostname-override": config.NODE_NAME,
            "node-ip": lay.node_ip,
            "root-dir": str(lay.paths.kubelet_root),
        },
    )


def kube_proxy_argv(lay: Layout) -> list[str]:
    return [lay.bin("kube-proxy"), f"--config={lay.conf('kube-proxy-config.json')}"]


def in_node_mounts(paths: Paths, argv: Sequence[str]) -> list[str]:
    pid = service(paths, "node-mounts").pid()
    if pid is None:
        raise LocalkubeError("the node's mount namespace holder is not running")
    return ["nsenter", f"--mount=/proc/{pid}/ns/mnt", "--", *argv]


# -- up -----------------------------------------------------------------------------------


def is_up(paths: Paths) -> bool:
    """Every component runs and the API server answers ready."""
    if not all(service(paths, n).running() for n in SERVICE_NAMES):
        return False
    url = f"https://127.0.0.1:{config.APISERVER_PORT}/readyz"
    return paths.kubeconfig.exists() and http_ok(url, context=_admin_tls(paths))


def any_running(paths: Paths) -> bool:
    return any(s.running() for s in services(paths))


def _ensure(
    paths: Paths,
    name: str,
    argv: Callable[[], list[str]],
    ready: Callable[[], bool],
    timeout: float,
) -> None:
    svc = service(paths, name)
    if svc.running():
        if ready():
            return
    else:
        command = argv()
        _stop_strays(paths, command)
        log(f"starting {name}")
        svc.start(command)
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


def up(paths: Paths, *, build_all: bool = True) -> None:
    """Bring the cluster up, reusing whatever part of it already runs.

    Concurrent calls (several test sessions, say) take turns; the later ones find it up.
    """
    with exclusive(paths.lock, "localkube up/down"):
        _up(paths, build_all=build_all)


def _up(paths: Paths, *, build_all: bool) -> None:
    started = time.monotonic()
    host.check_platform()
    host.check_commands()
    if is_up(paths) and node_ready(paths):
        log("the cluster is already up")
        return
    if not any_running(paths):
        leftovers = (paths.run, paths.etcd_data, paths.kubelet_root, paths.containerd_root)
        if any(p.exists() for p in leftovers):
            from localkube import cleanup

            log("cleaning up what a previous cluster left behind")
            cleanup.down_unlocked(paths, quiet=True)
        host.check_ports(config.PORTS)
        host.record_baseline(paths.host_baseline)
        for stale in paths.logs.glob("*.log"):
            stale.unlink()

    build.build_all(paths, None if build_all else ["kubernetes", "pause", "local-path-provisioner"])
    imageset.ensure_all(paths)  # archives only; imported once containerd runs

    node_ip = host.node_ip()
    for d in (paths.state, paths.run, paths.etc, paths.pids, paths.logs, paths.storage):
        d.mkdir(parents=True, exist_ok=True)
    paths.state.chmod(0o711)
    lay = Layout(paths, pki.ensure(paths.pki, node_ip, host.hostname()), node_ip)
    write_configs(lay)
    tls = _admin_tls(paths)
    insecure = _insecure_tls()

    _ensure(
        paths, "etcd", lambda: etcd_argv(lay),
        lambda: http_ok("http://127.0.0.1:2381/health"), 60,
    )  # fmt: skip
    api = f"https://127.0.0.1:{config.APISERVER_PORT}"
    _ensure(
        paths, "kube-apiserver", lambda: apiserver_argv(lay),
        lambda: http_ok(f"{api}/readyz", context=tls), 120,
    )  # fmt: skip
    _ensure(
        paths, "kube-controller-manager", lambda: controller_manager_argv(lay),
        lambda: http_ok("https://127.0.0.1:10257/healthz", context=insecure), 60,
    )  # fmt: skip
    _ensure(
        paths, "kube-scheduler", lambda: scheduler_argv(lay),
        lambda: http_ok("https://127.0.0.1:10259/healthz", context=insecure), 60,
    )  # fmt: skip

    # The node: its private mount namespace, containerd, images, kubelet, kube-proxy.
    _ensure(
        paths, "node-mounts",
        lambda: ["unshare", "--mount", "--propagation", "private", "--",
                 "sh", "-c", "mount --make-rshared / && exec sleep infinity"],
        lambda: True, 10,
    )  # fmt: skip
    paths.containerd_state.mkdir(parents=True, exist_ok=True)
    _ensure(
        paths, "containerd",
        lambda: in_node_mounts(paths, ["containerd", "--config", str(lay.conf("containerd.toml"))]),
        lambda: _containerd_ready(paths), 60,
    )  # fmt: skip
    imageset.ensure_all(paths, import_into=paths.containerd_socket)
    # -- source (issue 12): the image of the operator's checkout and upload pods ----------
    from localkube import gitimages

    gitimages.ensure(paths, import_into=paths.containerd_socket, names=("git",))
    # ----------------------------------------------------------------------------------------
    _ensure(
        paths, "kubelet", lambda: in_node_mounts(paths, kubelet_argv(lay)),
        lambda: http_ok("http://127.0.0.1:10248/healthz"), 90,
    )  # fmt: skip
    wait_for("the node to be Ready", lambda: node_ready(paths), timeout=120,
             svc=service(paths, "kubelet"))  # fmt: skip
    _ensure(
        paths, "kube-proxy", lambda: kube_proxy_argv(lay),
        lambda: http_ok("http://127.0.0.1:10256/healthz"), 60,
    )  # fmt: skip
    install_storage(paths)
    wait_for(
        "the default service account",
        lambda: bool(kubectl(paths, "get", "serviceaccount", "default", "-n", "default",
                             "--ignore-not-found", "-o", "name")),
        timeout=60,
    )  # fmt: skip
    log(f"the cluster is up ({time.monotonic() - started:.0f}s)")


def _containerd_ready(paths: Paths) -> bool:
    if not paths.containerd_socket.exists():
        return False
    out = run(["ctr", "--address", str(paths.containerd_socket), "version"], check=False)
    return out.returncode == 0


def install_storage(paths: Paths) -> None:
    template = string.Template((MANIFESTS / "local-path-storage.yaml").read_text())
    manifest = template.substitute(
        image=config.LOCAL_PATH_IMAGE,
        helper_image=config.BUSYBOX_IMAGE,
        provisioner=config.PROVISIONER_NAME,
        storage_class=config.STORAGE_CLASS,
        storage_dir=str(paths.storage),
        node=config.NODE_NAME,
    )
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
        nodes = kubectl(paths, "get", "nodes", "-o", "wide")
        lines.append("")
        lines.extend("  " + line for line in nodes.splitlines())
        lines.append("")
        lines.append(f"export KUBECONFIG={paths.kubeconfig}")
    head = "the cluster is up" if healthy else "the cluster is not (fully) running"
    return healthy, "\n".join([f"localkube: {head}", *lines])


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
