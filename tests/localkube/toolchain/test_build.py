"""The Go builds' link flags."""

from __future__ import annotations

from localkube import config
from localkube.toolchain import build


def test_helm_is_linked_with_its_version_and_kubernetes_version() -> None:
    flags = build.HELM.ldflags
    major, minor = config.HELM_K8S_VERSION
    for pkg in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        assert f"-X {pkg}.k8sVersionMajor={major}" in flags
        assert f"-X {pkg}.k8sVersionMinor={minor}" in flags
    assert f"internal/version.version={config.HELM_VERSION}" in flags
