"""The operator's side of builds: its configuration, the local cluster's discovery, the
certificate copied for build pods, and a pipeline with builds driven through the reconciler."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from shipway.controller.builder import LOCAL, BuildSecrets, discover
from shipway.controller.config import ConfigError, OperatorConfig, build_config
from shipway.controller.reconciler import Reconciler
from shipway.engine.naming import ANNOTATION_PIPELINE_UID, build_secret_name, pvc_name
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.settings import DEFAULT_CLIENT_IMAGE, BuildConfig, Settings
from shipway.models import PipelinePhase

from .builders import NOW
from .fakekube import KEY, FakeKube, snapshot

ENV = {
    "SHIPWAY_REGISTRY_URL": "registry.example.com/ci/",
    "SHIPWAY_BUILDKIT_ADDR": "tcp://buildkitd.builds.svc:1234",
    "SHIPWAY_BUILDKIT_CLIENT_SECRET": "shipway-buildkit-client",
    "SHIPWAY_NAMESPACE": "shipway",
    "SHIPWAY_BUILDKIT_WAIT": "30s",
}


def test_the_environment_names_registry_builder_and_certificate() -> None:
    config = OperatorConfig.from_env(ENV)
    assert config.build == BuildConfig(
        registry="registry.example.com/ci",
        builder="tcp://buildkitd.builds.svc:1234",
        client_secret="shipway-buildkit-client",
        client_image=DEFAULT_CLIENT_IMAGE,
        namespace="shipway",
        wait_seconds=30,
    )
    assert config.settings.build is config.build
    assert build_config({}).problem() is not None


def test_an_insecure_registry_reaches_buildkit_and_crane_in_every_pod() -> None:
    """The chart's registry.insecure: builds push with registry.insecure=true, and the pods
    reading the registry (push, a build's HEALTHCHECK read) run crane with --insecure."""
    config = OperatorConfig.from_env({**ENV, "SHIPWAY_REGISTRY_INSECURE": "true"})
    assert config.build.insecure is True
    assert config.pods.push.insecure is True
    plain = OperatorConfig.from_env(ENV)
    assert plain.build.insecure is False
    assert plain.pods.push.insecure is False


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SHIPWAY_REGISTRY_INSECURE", "maybe", "SHIPWAY_REGISTRY_INSECURE"),
        ("SHIPWAY_REGISTRY_URL", "https://registry.example.com", "not a URL"),
        ("SHIPWAY_BUILDKIT_ADDR", "buildkitd:1234", "tcp://host:port"),
        ("SHIPWAY_BUILD_TIMEOUT", "forever", "SHIPWAY_BUILD_TIMEOUT"),
    ],
)
def test_bad_settings_stop_the_operator_naming_the_variable(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        build_config({**ENV, name: value})


class Cluster(FakeKube):
    def __init__(self, services: set[tuple[str, str]]) -> None:
        super().__init__()
        self.services = services

    async def get_service(self, namespace: str, name: str) -> Manifest | None:
        return {"metadata": {"name": name}} if (namespace, name) in self.services else None


def _local() -> Cluster:
    cluster = Cluster(
        {
            (LOCAL.builder_namespace, LOCAL.builder_service),
            (LOCAL.registry_namespace, LOCAL.registry_service),
        }
    )
    cluster.secrets[(LOCAL.client_namespace, LOCAL.client_secret)] = {
        "data": {"ca.crt": "Q0E=", "tls.crt": "Q1JU", "tls.key": "S0VZ"}
    }
    return cluster


def test_the_local_cluster_is_found_with_no_settings() -> None:
    found = asyncio.run(discover(_local(), BuildConfig()))
    assert found.problem() is None
    assert found.builder == "tcp://shipway-buildkitd.shipway-buildkit.svc:1234"
    assert found.registry == "registry.localkube-system.svc.cluster.local"
    assert found.client_image == LOCAL.client_image
    assert found.namespace == "shipway-system"


def test_settings_win_over_discovery_and_other_clusters_are_left_alone() -> None:
    given = build_config(ENV)
    assert asyncio.run(discover(_local(), given)) == given
    assert asyncio.run(discover(Cluster(set()), BuildConfig())) == BuildConfig()


SEED: dict[str, Any] = {
    "services": {
        "demo": {
            "build": {"image": "myapp", "dockerfile_path": "Dockerfile"},
            "links": ["redis"],
            "volumes": ["./tmp:/app"],
        },
        "redis": {"image": "redis:7"},
        "volumes_test": {"build": {"dockerfile_path": "Dockerfile2"}, "volumes_from": ["demo"]},
    },
    "steps": [
        {"name": "write", "service": "demo", "command": "./artifact.sh"},
        {"name": "check", "service": "volumes_test", "command": "rspec"},
    ],
    "source": {"upload": {}},
}
UPLOADED = {
    "phase": "Running",
    "startedAt": "2026-11-27T11:59:10Z",
    "source": {"kind": "upload", "phase": "Succeeded", "pod": "demo-source-upload"},
}
"""The upload is in place: builds may start."""


def _uploaded(kube: FakeKube) -> None:
    """The status after the upload, and the claim it went into."""
    kube.status = dict(UPLOADED)
    name = pvc_name("demo", "uid-1")
    kube.claim_bodies[name] = {
        "metadata": {"name": name, "annotations": {ANNOTATION_PIPELINE_UID: "uid-1"}}
    }


CONFIG = BuildConfig(
    registry="registry.local",
    builder="tcp://buildkitd:1234",
    client_secret=LOCAL.client_secret,
    namespace=LOCAL.client_namespace,
)


def _finish_build(kube: FakeKube, name: str, digest: str) -> None:
    kube.finish(name, 0)
    state = kube.pods[name]["status"]["containerStatuses"][0]["state"]["terminated"]
    state["message"] = json.dumps({"digest": digest, "cached": 0, "steps": 2})


def test_a_pipeline_with_builds_copies_the_certificate_builds_then_runs_by_digest() -> None:
    kube = _local()
    _uploaded(kube)
    reconciler = Reconciler(kube, Settings(build=CONFIG), clock=lambda: NOW)

    async def step() -> None:
        await reconciler.reconcile(snapshot(kube, SEED), kube.views(), KEY)
        await asyncio.gather(*reconciler.background)

    asyncio.run(step())
    secret = build_secret_name("demo", "uid-1")
    builds = [n for n in kube.pods if "-build-" in n]
    assert len(builds) == 2
    assert kube.writes[:2] == ["create claim", f"create secret {secret}"]  # then the builds
    copy = kube.secrets[("ci", secret)]
    assert copy["data"] == {"ca.crt": "Q0E=", "tls.crt": "Q1JU", "tls.key": "S0VZ"}
    assert copy["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    digests = {"demo": "sha256:" + "d" * 64, "volumes_test": "sha256:" + "e" * 64}
    for name in builds:
        service = kube.pods[name]["metadata"]["labels"]["shipway.dev/build"]
        _finish_build(kube, name, digests[service])
    asyncio.run(step())
    (write,) = [p for n, p in kube.pods.items() if n.endswith("write")]
    main, redis = write["spec"]["containers"][0], write["spec"]["initContainers"][0]
    assert main["image"].endswith("/demo@" + digests["demo"])
    assert redis["image"] == "redis:7"
    assert ("ci", secret) not in kube.secrets, "gone once the last build ended"
    assert kube.status["phase"] == PipelinePhase.RUNNING
    assert [r for r, _ in kube.events].count("BuildSucceeded") == 2


def test_without_the_operators_certificate_builds_are_refused_not_left_waiting() -> None:
    kube = Cluster(set())
    _uploaded(kube)
    reconciler = Reconciler(kube, Settings(build=CONFIG), clock=lambda: NOW)
    for _ in range(2):
        asyncio.run(reconciler.reconcile(snapshot(kube, SEED), kube.views(), KEY))
    assert not [n for n in kube.pods if "-build-" in n]
    assert kube.status["phase"] == PipelinePhase.FAILED
    demo = next(b for b in kube.status["builds"] if b["service"] == "demo")
    assert demo["reason"] == "PodRejected"
    assert "Secret shipway-system/shipway-buildkit-client, does not exist" in demo["message"]


def test_the_certificate_is_read_once_then_reused() -> None:
    kube = _local()
    reads: list[str] = []
    original = kube.get_secret

    async def counting(namespace: str, name: str) -> Manifest | None:
        reads.append(name)
        return await original(namespace, name)

    kube.get_secret = counting  # type: ignore[method-assign]
    secrets = BuildSecrets(kube, CONFIG, clock=lambda: 0.0)
    for uid in ("a", "b"):
        assert asyncio.run(secrets.ensure(PipelineRef("p", "ci", uid))) is None
    assert reads == [LOCAL.client_secret]


def test_push_pods_run_the_local_crane_and_trust_the_cluster_ca_with_no_settings() -> None:
    from localkube.images.recipes import CRANE_IMAGE
    from shipway.controller.builder import discover_push
    from shipway.controller.config import pod_options
    from shipway.engine.settings import PushConfig

    assert LOCAL.push_image == CRANE_IMAGE
    found = asyncio.run(discover_push(_local(), PushConfig()))
    assert found == PushConfig(image=CRANE_IMAGE, ca_config_map="kube-root-ca.crt")
    given = pod_options({"SHIPWAY_PUSH_IMAGE": "crane:mine", "SHIPWAY_PUSH_CA_CONFIGMAP": "ca"})
    assert given.push == PushConfig(image="crane:mine", ca_config_map="ca")
    assert asyncio.run(discover_push(_local(), given.push)) == given.push
    assert asyncio.run(discover_push(Cluster(set()), PushConfig())) == PushConfig()


def test_the_local_names_are_localkubes() -> None:
    """The operator cannot import hack/localkube (it is not shipped): its copies of the local
    cluster's names must stay what localkube deploys."""
    from localkube import config
    from localkube.addons.buildkit import builder as buildkit
    from localkube.addons.buildkit import images as buildkit_images

    assert LOCAL.builder == buildkit.ADDRESS
    assert (LOCAL.builder_namespace, LOCAL.builder_service) == (buildkit.NAMESPACE, buildkit.NAME)
    assert (LOCAL.client_namespace, LOCAL.client_secret) == (
        buildkit.CLIENT_NAMESPACE,
        buildkit.CLIENT_SECRET,
    )
    assert LOCAL.client_image == buildkit_images.BUILDCTL_IMAGE
    assert LOCAL.registry_service == config.REGISTRY_SERVICE
    assert LOCAL.registry == config.REGISTRY_HOST
