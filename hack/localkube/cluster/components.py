"""The configuration of every component, decided from the paths and the host: files
(kubelet, kube-proxy, containerd, CNI, containerd's registry hosts) and command lines.

Pure builders plus :func:`write_configs`, which writes them; ``cluster`` starts the
processes with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localkube import config
from localkube.addons.registry import server as registry
from localkube.cluster import kubeconfig, pki
from localkube.config import Paths
from localkube.toolchain import build

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
    write_if_changed(lay.conf("containerd.toml"), containerd_config(p))
    write_registry_hosts(p.containerd_hosts, registry.containerd_hosts(k.ca_crt))
    p.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    _write_json(p.cni_conf_dir / "10-localkube.conflist", cni_config(p))


def write_if_changed(path: Path, text: str) -> None:
    """Write only a changed file: kube-proxy exits when its configuration file is written."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    write_if_changed(path, json.dumps(doc, indent=2) + "\n")


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
        # CoreDNS (the dns add-on) answers at this fixed Service address.
        "clusterDNS": [config.DNS_SERVICE_IP],
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
        "podLogsDir": str(lay.paths.pod_logs),
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
  # One directory per registry host, each with a hosts.toml (containerd >= 1.5): the
  # in-cluster registry by its Service name and address, and docker.io mirrored by it.
  [{cri}.registry]
    config_path = "{p.containerd_hosts}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{p.containerd_root}/opt"
"""


def write_registry_hosts(hosts_dir: Path, files: dict[str, str]) -> None:
    """Write ``<host>/hosts.toml`` for each host; remove directories of hosts no longer named."""
    hosts_dir.mkdir(parents=True, exist_ok=True)
    for stale in hosts_dir.iterdir():
        if stale.name not in files and stale.is_dir():
            for f in stale.iterdir():
                f.unlink()
            stale.rmdir()
    for host_name, text in files.items():
        (hosts_dir / host_name).mkdir(exist_ok=True)
        write_if_changed(hosts_dir / host_name / "hosts.toml", text)


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
