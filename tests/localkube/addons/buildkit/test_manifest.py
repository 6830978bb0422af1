"""The local builder's objects without Helm (issue #28): ``make demo`` builds no Helm, so
BuildKit's objects are the chart's committed rendering with the cluster's CA put in."""

from __future__ import annotations

from localkube.addons.buildkit import builder as buildkit
from localkube.addons.buildkit import manifest as buildkit_manifest
from localkube.addons.registry import server as registry

CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def test_the_cluster_ca_replaces_the_placeholder_and_nothing_else_changes() -> None:
    committed = buildkit_manifest.objects(buildkit_manifest.CA_PLACEHOLDER)
    filled = buildkit_manifest.objects(CA)
    kinds = [(o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]) for o in filled]
    assert kinds == [
        ("ConfigMap", buildkit.NAME, buildkit.NAMESPACE),
        ("Service", buildkit.NAME, buildkit.NAMESPACE),
        ("StatefulSet", buildkit.NAME, buildkit.NAMESPACE),
    ]
    key = f"ca-{registry.HOST.replace(':', '_')}.crt"
    assert filled[0]["data"][key] == CA
    assert buildkit_manifest.CA_PLACEHOLDER not in str(filled)
    assert filled[1:] == committed[1:]
    assert {k: v for k, v in filled[0]["data"].items() if k != key} == {
        k: v for k, v in committed[0]["data"].items() if k != key
    }


def test_the_committed_rendering_is_of_the_local_builders_values() -> None:
    """Mode and image as ``localkube`` deploys them (a changed constant needs a new rendering,
    which ``make chart-check`` demands by rendering with Helm)."""
    (statefulset,) = [o for o in buildkit_manifest.objects(CA) if o["kind"] == "StatefulSet"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["image"] == buildkit_manifest.values()["buildkit"]["image"]
    assert container["command"][0] == (
        "rootlesskit" if buildkit.MODE == "rootless" else "buildkitd"
    )
