"""The operator mints each namespace's own registry credential (issue #30, item 3): into the
build Secret, a pull Secret the pods running built images name, never a cluster-wide one."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from shipway.controller.builder import LOCAL, BuildSecrets, discover
from shipway.controller.config import build_config
from shipway.controller.reconciler import Reconciler
from shipway.controller.registrycreds import decode_key, pull_secret_name
from shipway.engine.naming import build_secret_name
from shipway.engine.objects import PipelineRef
from shipway.engine.settings import BuildConfig, Settings
from shipway.registryauth.credentials import authenticate
from shipway.registryauth.pods import (
    registry_prefix,
    with_pull_secret,
    with_realm_trust,
    with_source_login,
)
from tests.unit.builders import NOW
from tests.unit.fakekube import KEY, snapshot
from tests.unit.test_build_operator import SEED, Cluster, _finish_build, _local, _uploaded

KEY_BYTES = b"k" * 32
REGISTRY = "registry.localkube-system.svc.cluster.local"
CONFIG = BuildConfig(
    registry=REGISTRY,
    builder="tcp://buildkitd:1234",
    client_secret=LOCAL.client_secret,
    namespace=LOCAL.client_namespace,
    push_secret="cluster-wide-push",
    credential_secret=LOCAL.credential_secret,
)


def _with_key(cluster: Cluster) -> Cluster:
    cluster.secrets[(LOCAL.client_namespace, LOCAL.credential_secret)] = {
        "data": {"key": base64.b64encode(KEY_BYTES).decode()}
    }
    cluster.secrets[(LOCAL.client_namespace, "cluster-wide-push")] = {
        "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{"x":{}}}').decode()}
    }
    return cluster


def _config(data: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(base64.b64decode(data))
    return parsed


def test_the_build_secret_holds_the_namespaces_own_credential_never_the_push_secret() -> None:
    kube = _with_key(_local())
    secrets = BuildSecrets(kube, CONFIG, clock=lambda: 0.0)
    for namespace in ("team-a", "team-b"):
        ref = PipelineRef("p", namespace, "uid-" + namespace)
        assert asyncio.run(secrets.ensure(ref)) is None
        build = kube.secrets[(namespace, build_secret_name("p", ref.uid))]
        auths = _config(build["data"][".dockerconfigjson"])["auths"]
        assert list(auths) == [REGISTRY]
        entry = auths[REGISTRY]
        assert entry["username"] == namespace
        # the token service accepts it for this namespace, and only as this namespace
        who = authenticate(KEY_BYTES, None, entry["username"], entry["password"])
        assert who is not None
        assert who.namespace == namespace
        pull = kube.secrets[(namespace, pull_secret_name(ref))]
        assert pull["type"] == "kubernetes.io/dockerconfigjson"
        assert pull["data"][".dockerconfigjson"] == build["data"][".dockerconfigjson"]
        # the push pods' login reads these two
        assert base64.b64decode(pull["data"]["username"]).decode() == namespace
        assert base64.b64decode(pull["data"]["password"]).decode() == entry["password"]
        assert pull["metadata"]["ownerReferences"][0]["uid"] == ref.uid
    a = _config(kube.secrets[("team-a", pull_secret_name(PipelineRef("p", "team-a", "uid-team-a")))]["data"][".dockerconfigjson"])  # fmt: skip
    b = _config(kube.secrets[("team-b", pull_secret_name(PipelineRef("p", "team-b", "uid-team-b")))]["data"][".dockerconfigjson"])  # fmt: skip
    assert a["auths"][REGISTRY]["password"] != b["auths"][REGISTRY]["password"]


def test_the_pull_secret_goes_when_the_run_is_over() -> None:
    kube = _with_key(_local())
    secrets = BuildSecrets(kube, CONFIG, clock=lambda: 0.0)
    ref = PipelineRef("p", "team-a", "uid-a")
    other = PipelineRef("q", "team-a", "uid-q")
    assert asyncio.run(secrets.ensure(ref)) is None
    assert asyncio.run(secrets.ensure(other)) is None
    asyncio.run(secrets.drop_pull(ref))
    assert ("team-a", pull_secret_name(ref)) not in kube.secrets
    # a neighbour's run keeps its own
    assert ("team-a", pull_secret_name(other)) in kube.secrets
    asyncio.run(secrets.drop_pull(ref))  # again: harmless


def test_a_missing_or_short_key_refuses_builds_naming_the_secret() -> None:
    kube = _local()
    secrets = BuildSecrets(kube, CONFIG, clock=lambda: 0.0)
    problem = asyncio.run(secrets.ensure(PipelineRef("p", "ci", "u")))
    assert problem is not None
    assert "shipway-system/shipway-registry-credentials" in problem
    kube.secrets[(LOCAL.client_namespace, LOCAL.credential_secret)] = {
        "data": {"key": base64.b64encode(b"short").decode()}
    }
    secrets = BuildSecrets(kube, CONFIG, clock=lambda: 0.0)
    problem = asyncio.run(secrets.ensure(PipelineRef("p", "ci", "u")))
    assert problem is not None
    assert "at least 32" in problem
    assert ("ci", pull_secret_name(PipelineRef("p", "ci", "u"))) not in kube.secrets


def test_steps_running_built_images_name_the_pull_secret_and_builds_trust_the_realm() -> None:
    kube = _with_key(_local())
    _uploaded(kube)
    reconciler = Reconciler(kube, Settings(build=CONFIG), clock=lambda: NOW)
    reconciler.options = reconciler.options.__class__(
        **{**reconciler.options.__dict__, "push": reconciler.options.push.__class__(ca_config_map="kube-root-ca.crt")}
    )  # fmt: skip

    async def step() -> None:
        await reconciler.reconcile(snapshot(kube, SEED), kube.views(), KEY)
        await asyncio.gather(*reconciler.background)

    asyncio.run(step())
    builds = [n for n in kube.pods if "-build-" in n]
    for name in builds:
        spec = kube.pods[name]["spec"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["DOCKER_CONFIG"] == "/run/secrets/registry"
        assert env["SSL_CERT_DIR"].split(":")[1:] == ["/etc/ssl/certs"]
        _finish_build(kube, name, "sha256:" + "d" * 64)
    asyncio.run(step())
    (write,) = [p for n, p in kube.pods.items() if n.endswith("write")]
    assert {"name": pull_secret_name(PipelineRef("demo", "ci", "uid-1"))} in write["spec"][
        "imagePullSecrets"
    ]
    assert ("ci", pull_secret_name(PipelineRef("demo", "ci", "uid-1"))) in kube.secrets


def test_only_pods_with_an_image_of_the_registry_get_the_pull_secret() -> None:
    def pod(image: str) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": "c", "image": image}]}}

    built, mirrored, lookalike = (
        pod(f"{REGISTRY}/ci/p-1/web@sha256:1"),
        pod("busybox"),
        pod(f"{REGISTRY}.evil.example/x"),
    )
    assert with_pull_secret(built, "s", REGISTRY)
    assert with_pull_secret(built, "s", REGISTRY)  # idempotent
    assert built["spec"]["imagePullSecrets"] == [{"name": "s"}]
    assert not with_pull_secret(mirrored, "s", REGISTRY)
    assert not with_pull_secret(lookalike, "s", REGISTRY)
    assert "imagePullSecrets" not in mirrored["spec"]
    other = pod("x")
    with_realm_trust(other, "build", "ca")
    assert "volumes" not in other["spec"], "no build container: nothing changes"


def test_the_registry_path_is_the_token_services_prefix() -> None:
    assert registry_prefix(REGISTRY) == ""
    assert registry_prefix("registry.example.com/ci/") == "ci/"
    assert registry_prefix("r:5000/a/b") == "a/b/"


def test_the_local_key_is_found_only_when_localkube_made_it() -> None:
    assert asyncio.run(discover(_local(), BuildConfig())).credential_secret is None
    found = asyncio.run(discover(_with_key(_local()), BuildConfig()))
    assert found.credential_secret == LOCAL.credential_secret
    env = {"SHIPWAY_REGISTRY_URL": "r.example", "SHIPWAY_REGISTRY_CREDENTIAL_SECRET": "creds"}
    assert build_config(env).credential_secret == "creds"


def _push_pod(source: str) -> dict[str, Any]:
    from shipway.engine.intents import PushTarget, PushToCreate
    from shipway.engine.pods.manifests import pod_manifest
    from shipway.engine.settings import PodOptions, PushConfig
    from tests.unit.builders import compiled

    pipeline = compiled(
        {
            "services": {"app": {"build": "."}},
            "source": {"git": {"url": "https://git.example.com/team/app.git"}},
            "steps": [
                {
                    "name": "push",
                    "type": "push",
                    "service": "app",
                    "image_name": "quay.example/team/app",
                    "image_tag": "1",
                    "dockercfgSecret": "users-own",
                }
            ],
        }
    )
    target = PushTarget(source, "sha256:" + "a" * 64, "quay.example/team/app:1")
    create = PushToCreate("1", 0, "p-push", push=target)
    ref = PipelineRef("p", "team-a", "uid-p")
    return pod_manifest(
        ref, pipeline, create, options=PodOptions(push=PushConfig(image="crane:debug"))
    )


def test_a_push_pod_reads_the_built_image_with_the_namespaces_credential(tmp_path: Path) -> None:
    """The push script, run for real with a fake crane: it logs in to the cluster's registry
    with the namespace's credential into a copy of the user's config, then copies."""
    pod = _push_pod(f"{REGISTRY}/team-a/p-1/app@sha256:" + "a" * 64)
    assert with_source_login(pod, "p-pull", REGISTRY, "team-a")
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    password_ref = next(e for e in container["env"] if e["name"] == "SHIPWAY_SOURCE_PASSWORD")
    assert password_ref["valueFrom"]["secretKeyRef"] == {"name": "p-pull", "key": "password"}
    assert env["SHIPWAY_SOURCE_USER"] == "team-a"
    fake = tmp_path / "bin" / "crane"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'echo "$DOCKER_CONFIG $@" >> "$CALLS"\n'
        '[ "$1" = auth ] && { read -r pw; echo "$pw" > "$DOCKER_CONFIG/login"; }\n'
        '[ "$1" = digest ] && echo "$SHIPWAY_DIGEST"\nexit 0\n'
    )
    fake.chmod(0o755)
    given = tmp_path / "secret"
    given.mkdir()
    (given / "config.json").write_text('{"auths": {"quay.example": {"auth": "dXNlcjpwdw=="}}}')
    run_env = {
        **{k: v for k, v in env.items() if v is not None},
        "SHIPWAY_SOURCE_PASSWORD": "the-namespaces-password",
        "PATH": f"{fake.parent}:{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "SHIPWAY_TERMINATION_LOG": str(tmp_path / "term"),
        "CALLS": str(tmp_path / "calls"),
        "DOCKER_CONFIG": str(given),
    }
    done = subprocess.run(
        ["sh", "-c", container["command"][2], "shipway-push"],
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = [c.split() for c in (tmp_path / "calls").read_text().splitlines()]
    merged = tmp_path / "source-docker"
    assert calls[0] == [str(merged), "auth", "login", REGISTRY, "-u", "team-a", "--password-stdin"]
    assert [c[:2] for c in calls[1:]] == [[str(merged), "copy"], [str(merged), "digest"]]
    assert (merged / "login").read_text().strip() == "the-namespaces-password"
    assert "quay.example" in (merged / "config.json").read_text()  # the user's, kept
    assert "the-namespaces-password" not in done.stdout + done.stderr


def test_a_push_of_an_image_from_elsewhere_is_left_as_it_is() -> None:
    pod = _push_pod("docker.io/library/redis@sha256:" + "a" * 64)
    before = json.dumps(pod, sort_keys=True)
    assert not with_source_login(pod, "p-pull", REGISTRY, "team-a")
    assert json.dumps(pod, sort_keys=True) == before


def test_a_key_with_whitespace_bytes_at_its_ends_is_used_verbatim() -> None:
    """The token service derives the same password from every byte of the Secret's key."""
    key = b"\t" + b"r" * 30 + b"\n"
    assert decode_key({"data": {"key": base64.b64encode(key).decode()}}, "ns/k") == key
