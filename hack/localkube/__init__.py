"""localkube: a real single-node Kubernetes cluster for Shipway's development, tests and CI.

Everything is built offline from the package registries (Go module proxy, Debian) into a
version-keyed cache, then run as plain background processes managed by this package:
etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet and
kube-proxy, with CNI bridge networking and a dynamic local-path StorageClass.

Run ``python -m localkube --help``.
"""

from localkube.config import KUBERNETES_VERSION

__all__ = ["KUBERNETES_VERSION"]
