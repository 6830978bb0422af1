"""``type: push`` on the real cluster, to the local password-protected registry.

A Codeship project as a user has it: a Dockerfile, ``codeship.aes`` and a jet-encrypted
dockercfg for the registry (``encrypted_dockercfg_path``). ``shipway run --dir --push`` decrypts
it into a Secret the Pipeline owns; the image is built, tested, and the push step copies
exactly the tested digest to ``{{ .Branch }}-{{ .ShortCommitID }}``. The registry's own HTTP
API (``HEAD /v2/<repo>/manifests/<tag>``, with the password) then says which digest the tag
holds. A wrong password and an unknown registry host fail their steps with the registry's (or
the resolver's) answer; the password never shows in the status, Events, logs or the operator's
log.

The registry is ``localkube.addons.registry.auth`` (distribution with htpasswd), deployed by
``localkube up`` and made sure of here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shipway.codeship.jetcrypt import encrypt

from . import crds, gitserver
from .conftest import OperatorProcess
from .kube import Cluster
from .pipelines import ROOT, Kubectl, steps_by_name

pytestmark = pytest.mark.e2e

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass(frozen=True)
class Protected:
    host: str
    address: str
    """The Service's ClusterIP: the host reaches it through kube-proxy."""
    user: str
    password: str = field(repr=False)
    ca: Path = Path()

    def docker_config(self, password: str | None = None, host: str | None = None) -> str:
        secret = password or self.password
        auth = base64.b64encode(f"{self.user}:{secret}".encode()).decode()
        return json.dumps({"auths": {host or self.host: {"auth": auth}}})

    def tag_digest(self, repository: str, tag: str) -> str | None:
        """The registry's answer, through its HTTP API, for ``repository:tag``."""
        import urllib3

        pool = urllib3.HTTPSConnectionPool(
            self.address,
            443,
            ca_certs=str(self.ca),
            server_hostname=self.host,
            assert_hostname=self.host,
        )
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        response = pool.request(
            "HEAD",
            f"/v2/{repository}/manifests/{tag}",
            headers={"Authorization": f"Basic {auth}", "Accept": MANIFEST_TYPES},
        )
        if response.status == 404:
            return None
        assert response.status == 200, (response.status, response.headers)
        digest: str = response.headers["Docker-Content-Digest"]
        return digest


@pytest.fixture(scope="module")
def protected(cluster: Cluster) -> Protected:
    if not cluster.local:
        pytest.skip("needs the local cluster's password-protected registry")
    from localkube.addons.registry import auth as authregistry
    from localkube.config import Paths

    paths = Paths.default()
    authregistry.ensure(paths)
    secret = cluster.json(
        "get", "secret", authregistry.CREDENTIALS_SECRET, "-n", authregistry.NAMESPACE
    )
    address = cluster.kubectl(
        "get", "service", authregistry.NAME, "-n", authregistry.NAMESPACE,
        "-o", "jsonpath={.spec.clusterIP}",
    )  # fmt: skip
    return Protected(
        authregistry.HOST,
        address,
        base64.b64decode(secret["data"]["username"]).decode(),
        base64.b64decode(secret["data"]["password"]).decode(),
        paths.pki / "ca.crt",
    )


SEED = ROOT / "examples" / "seed-walkthrough"


@pytest.fixture
def k(cluster: Cluster, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def project(directory: Path, steps: list[dict[str, Any]], files: dict[str, str]) -> Path:
    """A Codeship project: a Dockerfile with a marker of its own, and its AES key."""
    directory.mkdir()
    marker = secrets.token_hex(8)
    (directory / "marker").write_text(marker + "\n")
    (directory / "Dockerfile").write_text("FROM busybox\nCOPY marker /marker\n")
    (directory / "codeship-services.yml").write_text(json.dumps({"app": {"build": "."}}))
    (directory / "codeship-steps.yml").write_text(json.dumps(steps))
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def shipway_run(k: Kubectl, directory: Path, *args: str) -> tuple[str, int, dict[str, Any]]:
    """``shipway run --dir`` with this tree's CRD kept in place (again if another session's
    refused the Pipeline): its output, exit code and the Pipeline at the end."""
    output = ""
    for _ in range(8):
        with crds.kept(k):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "shipway",
                    "run",
                    "--dir",
                    str(directory),
                    "-n",
                    k.namespace,
                    *args,
                ],
                capture_output=True,
                text=True,
                env={**k.env, "PYTHONPATH": str(ROOT / "operator"), "NO_COLOR": "1"},
                timeout=900,
                check=False,
            )
        output = done.stdout + done.stderr
        if any(
            sign in output
            for sign in (
                'Unsupported value: "push"',
                "image builds are not supported",
                "a push step needs image_name",  # pruned at the create
            )
        ):
            continue  # another session's CRD was in place at the create
        body = k.pipeline(created(output))
        status = body.get("status") or {}
        pruned = "builds" not in status or any(
            s.get("phase") == "Succeeded" and s["name"].startswith("push") and "digest" not in s
            for s in status.get("steps", [])
        )
        if not pruned:  # (the push steps of these tests are named "push…")
            return output, done.returncode, body
        # another session's CRD was in place at a status write: its schema pruned our fields
    raise AssertionError(f"another test session kept applying an older CRD:\n{output}")


def created(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("shipway: pipeline ") and line.endswith(" created"):
            return line.split()[2].split("/")[1]
    raise AssertionError(f"no 'created' line in:\n{output}")


def everything_told(k: Kubectl, name: str, operator: OperatorProcess | None) -> str:
    """The status, the Events, every pod's log and the operator's log, as one text."""
    parts = [json.dumps(k.pipeline(name)), json.dumps(k.events(name))]
    pods = k.json("get", "pods")["items"]
    for pod in pods:
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            parts.append(
                k.run("logs", pod["metadata"]["name"], "-c", container["name"], check=False).stdout
            )
    if operator is not None:
        parts.append(operator.log_path.read_text(errors="replace"))
    return "\n".join(parts)


def test_the_tested_digest_is_pushed_to_the_protected_registry(
    k: Kubectl, protected: Protected, shipway_operator: OperatorProcess | None, tmp_path: Path
) -> None:
    key = secrets.token_bytes(32)
    commit = secrets.token_hex(20)
    repository = f"e2e/{k.namespace}/app"
    steps = [
        {"name": "test", "service": "app", "command": "cat /marker"},
        {
            "name": "push",
            "type": "push",
            "service": "app",
            "image_name": f"{protected.host}/{repository}",
            "image_tag": "{{ .Branch }}-{{ .ShortCommitID }}",
            "encrypted_dockercfg_path": "dockercfg.encrypted",
        },
    ]
    files = {
        "codeship.aes": base64.b64encode(key).decode(),
        "dockercfg.encrypted": encrypt(protected.docker_config().encode(), key),
    }
    directory = project(tmp_path / "app", steps, files)
    output, code, body = shipway_run(
        k, directory, "--push", "--branch", "main", "--commit-id", commit
    )
    assert code == 0, output
    name = body["metadata"]["name"]
    status = body["status"]
    (build,) = status["builds"]
    by_name = steps_by_name(body)
    push, test = by_name["push"], by_name["test"]
    tag = f"main-{commit[:7]}"
    assert push["image"] == f"{protected.host}/{repository}:{tag}"
    assert push["digest"] == build["digest"]
    # The step before ran that very digest, and the registry holds it under the tag.
    test_pod = k.json("get", "pod", test["pod"])
    assert test_pod["spec"]["containers"][0]["image"] == f"{build['image']}@{build['digest']}"
    assert protected.tag_digest(repository, tag) == build["digest"]
    assert (directory / "marker").read_text().strip() in k("logs", test["pod"])
    pushed = [e for e in k.events(name) if "pushed" in e["message"]]
    assert pushed
    assert build["digest"] in pushed[0]["message"]
    # The credentials: a Secret owned by the Pipeline, never in the Pipeline or anything told.
    secret_name = body["spec"]["steps"][1]["dockercfgSecret"]
    secret = k.json("get", "secret", secret_name)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert body["metadata"]["uid"] in [o["uid"] for o in secret["metadata"]["ownerReferences"]]
    told = everything_told(k, name, shipway_operator)
    assert protected.password not in told
    assert protected.password not in json.dumps(body["spec"])
    assert protected.password not in output


def test_a_wrong_password_and_an_unknown_host_fail_with_the_answer(
    k: Kubectl, protected: Protected, shipway_operator: OperatorProcess | None, tmp_path: Path
) -> None:
    key = secrets.token_bytes(32)
    wrong = f"wrong-{secrets.token_hex(6)}"
    push = {"type": "push", "service": "app", "image_tag": "v1"}
    steps = [
        {
            "type": "parallel",
            "steps": [
                {
                    **push,
                    "name": "wrong password",
                    "image_name": f"{protected.host}/e2e/{k.namespace}/app",
                    "encrypted_dockercfg_path": "wrong.encrypted",
                },
                {
                    **push,
                    "name": "unknown host",
                    "image_name": f"registry.{k.namespace}.invalid/e2e/app",
                    "encrypted_dockercfg_path": "good.encrypted",
                },
            ],
        }
    ]
    files = {
        "codeship.aes": base64.b64encode(key).decode(),
        "wrong.encrypted": encrypt(protected.docker_config(wrong).encode(), key),
        "good.encrypted": encrypt(protected.docker_config().encode(), key),
    }
    directory = project(tmp_path / "bad", steps, files)
    output, code, body = shipway_run(k, directory, "--push", "--branch", "main")
    assert code == 1, output
    name = body["metadata"]["name"]
    by_name = steps_by_name(body)
    refused, unknown = by_name["wrong password"], by_name["unknown host"]
    assert (refused["phase"], refused["reason"]) == ("Failed", "PushFailed"), refused
    assert "401 unauthorized" in refused["message"].lower(), refused
    assert (unknown["phase"], unknown["reason"]) == ("Failed", "PushFailed"), unknown
    assert "no such host" in unknown["message"], unknown
    assert refused.get("digest") is None
    assert protected.tag_digest(f"e2e/{k.namespace}/app", "v1") is None
    told = everything_told(k, name, shipway_operator) + output
    assert protected.password not in told
    assert wrong not in told


def test_the_seed_walkthrough_ends_with_a_push_of_myapp(
    cluster: Cluster,
    k: Kubectl,
    protected: Protected,
    shipway_operator: OperatorProcess | None,
    *,
    tmp_path: Path,
    git_server_image: None,
) -> None:
    """From the in-cluster git server (so the commit is a real one), with --push and the
    protected registry's credentials as a Secret of the namespace (--dockercfg-secret)."""
    from localkube.addons.registry import auth as authregistry

    source = cluster.json(
        "get", "secret", authregistry.CREDENTIALS_SECRET, "-n", authregistry.NAMESPACE
    )
    k.apply_docs(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry-auth"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": source["data"][".dockerconfigjson"]},
            }
        ]
    )
    files: dict[str, str | bytes | None] = {
        str(path.relative_to(SEED)): path.read_bytes() for path in SEED.rglob("*") if path.is_file()
    }
    repo = gitserver.make_repo(tmp_path, "seed", [files])
    work = repo.bare.parent / "seed-work"
    server_ns = f"{k.namespace}-git"[:63]
    server = gitserver.start(cluster, server_ns, tmp_path)
    try:
        server.publish(repo)
        output, code, body = shipway_run(
            k,
            work,
            *("--git-url", server.http("seed"), "--revision", "main"),
            *("--push", "--dockercfg-secret", "registry-auth"),
        )
    finally:
        gitserver.stop(cluster, server_ns)
    assert code == 0, output
    commit = body["status"]["source"]["commit"]
    by_name = steps_by_name(body)
    assert [by_name[n]["phase"] for n in ("services", "write artifact", "check artifact")] == [
        "Succeeded"
    ] * 3
    push = by_name["push myapp"]
    demo = next(b for b in body["status"]["builds"] if b["service"] == "demo")
    tag = f"main-{commit[:7]}"
    assert push["image"] == f"{protected.host}/seed/myapp:{tag}"
    assert push["digest"] == demo["digest"]
    assert protected.tag_digest("seed/myapp", tag) == demo["digest"]
    assert "(step: push myapp) shipway-push: pushed" in output
    assert protected.password not in everything_told(k, body["metadata"]["name"], shipway_operator)


def test_a_generator_service_writes_the_credentials_the_push_uses(
    k: Kubectl, protected: Protected, shipway_operator: OperatorProcess | None, tmp_path: Path
) -> None:
    """Codeship's ``dockercfg_service`` (example 19's shape): a service whose encrypted
    environment holds what it needs writes the old ``.dockercfg`` form to the path it is given;
    the push reads it, wraps it as config.json, deletes it, and pushes."""
    key = secrets.token_bytes(32)
    auth = base64.b64encode(f"{protected.user}:{protected.password}".encode()).decode()
    old_form = json.dumps({protected.host: {"auth": auth, "email": ""}})
    repository = f"e2e/{k.namespace}/generated"
    steps = [
        {
            "name": "push generated",
            "type": "push",
            "service": "app",
            "image_name": f"{protected.host}/{repository}",
            "image_tag": "{{ .Branch }}",
            "dockercfg_service": "generator",
        }
    ]
    files = {
        "codeship.aes": base64.b64encode(key).decode(),
        "generator.env.encrypted": encrypt(f"DOCKERCFG={old_form}\n".encode(), key),
    }
    directory = project(tmp_path / "gen", steps, files)
    services = json.loads((directory / "codeship-services.yml").read_text())
    services["generator"] = {
        "image": "busybox:1.36",
        "entrypoint": ["sh", "-c", 'printf "%s" "$DOCKERCFG" > "$1"', "generator"],
        "encrypted_env_file": "generator.env.encrypted",
    }
    (directory / "codeship-services.yml").write_text(json.dumps(services))
    output, code, body = shipway_run(k, directory, "--push", "--branch", "gen")
    assert code == 0, output
    (build,) = body["status"]["builds"]
    (push,) = body["status"]["steps"]
    assert push["digest"] == build["digest"]
    assert protected.tag_digest(repository, "gen") == build["digest"]
    pod = k.json("get", "pod", push["pod"])
    (init,) = pod["spec"]["initContainers"]
    assert init["args"] == ["/run/shipway-dockercfg/dockercfg"]
    assert {"name": "dockercfg", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}} in pod[
        "spec"
    ]["volumes"]
    assert protected.password not in everything_told(k, body["metadata"]["name"], shipway_operator)


def test_encrypted_build_args_reach_the_build_as_secrets(
    k: Kubectl, shipway_operator: OperatorProcess | None, tmp_path: Path
) -> None:
    """``encrypted_args`` decrypted by ``shipway run`` into a Secret (``build.argsFrom``): the
    Dockerfile reads it as a BuildKit secret; the value is in no status, log or image config."""
    key = secrets.token_bytes(32)
    value = f"v-{secrets.token_hex(8)}"
    directory = project(
        tmp_path / "args",
        [{"name": "check", "service": "app", "command": "cat /checked"}],
        {"codeship.aes": base64.b64encode(key).decode()},
    )
    (directory / "Dockerfile").write_text(
        "FROM busybox\n"
        'RUN --mount=type=secret,id=TOKEN,env=TOKEN printf %s "$TOKEN" | sha256sum > /checked\n'
    )
    services = {
        "app": {
            "build": {"context": ".", "encrypted_args": encrypt(f"TOKEN={value}\n".encode(), key)}
        }
    }
    (directory / "codeship-services.yml").write_text(json.dumps(services))
    output, code, body = shipway_run(k, directory, "--branch", "main")
    assert code == 0, output
    seen = hashlib.sha256(value.encode()).hexdigest()
    assert f"(step: check) {seen}" in output
    (secret_ref,) = body["spec"]["services"]["app"]["build"]["argsFrom"]
    secret = k.json("get", "secret", secret_ref["secretRef"]["name"])
    assert base64.b64decode(secret["data"]["TOKEN"]).decode() == value
    assert body["metadata"]["uid"] in [o["uid"] for o in secret["metadata"]["ownerReferences"]]
    assert value not in output
    assert value not in everything_told(k, body["metadata"]["name"], shipway_operator)
