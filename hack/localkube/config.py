"""Pinned versions, fixed paths, addresses and ports of the local cluster.

Two directories matter:

* the cache (``/var/cache/shipway``, or ``$SHIPWAY_CACHE_DIR``): binaries built from the Go
  module proxy and image archives, keyed by version and content; survives ``down``;
* the state (``/var/lib/shipway-localkube``): certificates, etcd data, kubelet and containerd
  roots, volumes, logs and the admin kubeconfig of the running cluster; ``down`` removes
  all of it but the logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.35.4"
#: The Go toolchain ``host-deps`` fetches (as the module golang.org/toolchain from the Go module
#: proxy, as ``go`` itself does) when the host has no Go at least GO_MINIMUM.
GO_VERSION = "1.26.8"
GO_MINIMUM = (1, 26)
#: The k8s.io/* staging modules carry the same minor and patch as v0.
STAGING_VERSION = "v0" + KUBERNETES_VERSION[2:]
ETCD_VERSION = "v3.6.5"
HELM_VERSION = "v3.22.0"
KWOK_VERSION = "v0.8.0"
LOCAL_PATH_PROVISIONER_VERSION = "v0.0.30"
PAUSE_VERSION = "3.10"
# -- BuildKit (issue #14) --
BUILDKIT_VERSION = "v0.34.2"
#: The Dockerfile frontend inside BuildKit v0.34.2 (frontend/dockerfile/version: 1.28).
DOCKERFILE_FRONTEND_VERSION = "1.28.0-buildkit-v0.34.2"
REGISTRY_VERSION = "v3.1.2"
COREDNS_VERSION = "v1.15.0"
CRANE_VERSION = "v0.22.1"
#: The forge of the triggers e2e tests and demo (issue 26), built only when they ask for it.
GITEA_VERSION = "v1.27.3"
#: helm's release build links the Kubernetes version its client-go module implies
#: (client-go v0.37 -> 1.37, helm's Makefile adds 1 to the major): what ``helm template``
#: assumes without ``--kube-version``.
HELM_K8S_VERSION = ("1", "37")

NODE_NAME = "localkube"
CLUSTER_NAME = "localkube"
BRIDGE = "localkube0"
CNI_NETWORK = "localkube"
CLUSTER_CIDR = "10.244.0.0/16"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CLUSTER_DOMAIN = "cluster.local"
#: Fixed Service addresses of the add-ons, in the range Kubernetes keeps for static
#: assignment (the low end of SERVICE_CIDR), so no dynamically allocated Service takes them.
DNS_SERVICE_IP = "10.96.0.10"
REGISTRY_SERVICE_IP = "10.96.0.20"
#: The namespace of localkube's own add-ons (the registry); CoreDNS lives in kube-system.
SYSTEM_NAMESPACE = "localkube-system"
REGISTRY_SERVICE = "registry"
#: The name pods and the node use for the registry (its Service's DNS name, port 443).
REGISTRY_HOST = f"{REGISTRY_SERVICE}.{SYSTEM_NAMESPACE}.svc.{CLUSTER_DOMAIN}"

#: Every TCP port the cluster listens on, with its owner, checked free before ``up``.
PORTS: dict[int, str] = {
    2379: "etcd client",
    2380: "etcd peer",
    2381: "etcd metrics",
    6443: "kube-apiserver",
    10248: "kubelet healthz",
    10249: "kube-proxy metrics",
    10250: "kubelet",
    10256: "kube-proxy healthz",
    10257: "kube-controller-manager",
    10259: "kube-scheduler",
}
APISERVER_PORT = 6443

#: Image names. The pause image is exactly what containerd's CRI config names.
PAUSE_IMAGE = f"registry.k8s.io/pause:{PAUSE_VERSION}"
BUSYBOX_IMAGE = "docker.io/library/busybox:1.36"
REDIS_IMAGE = "docker.io/library/redis:7.0"
LOCAL_PATH_IMAGE = f"localkube.shipway.dev/local-path-provisioner:{LOCAL_PATH_PROVISIONER_VERSION}"
COREDNS_IMAGE = f"localkube.shipway.dev/coredns:{COREDNS_VERSION}"
REGISTRY_IMAGE = f"localkube.shipway.dev/registry:{REGISTRY_VERSION}"
STORAGE_CLASS = "local-path"
STORAGE_BINDING_MODE = "Immediate"
"""The class's volumeBindingMode: a claim gets its volume when it is made (docs/local-cluster.md#storage)."""
PROVISIONER_NAME = "rancher.io/local-path"

#: (The Debian packages the host needs are listed, with why, in ``hostdeps.PACKAGES``.)
#: Host commands checked before ``up``, with the Debian package that provides each.
HOST_COMMANDS: dict[str, str] = {
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "ip6tables": "iptables",
    "conntrack": "conntrack",
    "ip": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "mount": "mount",
    "openssl": "openssl",
    "debootstrap": "debootstrap",
    "chroot": "coreutils",
}
#: The repository (chart, Dockerfile, operator sources): localkube is its ``hack/localkube``.
#: Modules that need it use this, never a ``parents[n]`` of their own, so moving one keeps it.
REPO = Path(__file__).resolve().parents[2]
CNI_BIN_DIR = Path("/usr/lib/cni")
BUSYBOX_BINARY = Path("/bin/busybox")


@dataclass(frozen=True)
class Paths:
    """Where everything lives. ``Paths.default()`` is what the tool and the tests use."""

    cache: Path
    state: Path
    run: Path

    @classmethod
    def default(cls) -> Paths:
        return cls(
            cache=Path(os.environ.get("SHIPWAY_CACHE_DIR", "/var/cache/shipway")),
            state=Path("/var/lib/shipway-localkube"),
            run=Path("/run/shipway-localkube"),
        )

    # -- cache --------------------------------------------------------------------------
    @property
    def bin(self) -> Path:
        """Stable directory of symlinks to every built binary (kubectl, helm, kwok, ...)."""
        return self.cache / "bin"

    @property
    def images(self) -> Path:
        return self.cache / "images"

    # -- state --------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig: fixed and documented."""
        return self.state / "admin.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def etc(self) -> Path:
        return self.state / "etc"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pod_logs(self) -> Path:
        """The kubelet's ``podLogsDir``: pods' logs stay with the components' (kept after
        ``down`` for a post-mortem, cleared by the next ``up``), not in the host's /var/log."""
        return self.logs / "pods"

    @property
    def containerd_hosts(self) -> Path:
        """containerd's registry host configuration (``config_path``): ``<host>/hosts.toml``."""
        return self.etc / "certs.d"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def containerd_root(self) -> Path:
        return self.state / "containerd"

    @property
    def cni_conf_dir(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.state / "cni" / "ipam"

    @property
    def storage(self) -> Path:
        """Where the local-path provisioner creates the volumes of PVCs."""
        return self.state / "storage"

    @property
    def host_baseline(self) -> Path:
        return self.state / "host-baseline.json"

    @property
    def lock(self) -> Path:
        """Held by ``up`` and ``down`` so that concurrent calls take turns."""
        return self.run.with_name(self.run.name + ".lock")

    # -- run ----------------------------------------------------------------------------
    @property
    def containerd_state(self) -> Path:
        return self.run / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd" / "containerd.sock"
