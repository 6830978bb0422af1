"""BuildKit on the real cluster: builds from pods with client certificates, and nothing else.

* A pod holding the client certificate (a copy of the operator namespace's Secret, as the
  operator would lend it to a build pod) runs ``buildctl-shipway`` to build a ``FROM ruby:3.1``
  Dockerfile with a ``RUN`` and a ``COPY`` (its ``# syntax=`` frontend and base from the
  in-cluster docker.io mirror), pushes it to the registry, and a second pod runs it by digest.
  The same context built again is served from BuildKit's cache: every Dockerfile step is
  reported ``CACHED`` and the digest is the same.
* A pod without a client certificate, or with one from another CA, is refused by buildkitd.
* An unreachable builder fails the build pod after a bounded wait with a line naming it; a full
  cache volume is named too (a throwaway buildkitd whose state is a 64 MiB tmpfs).
* The builder runs with the cache cap and parallelism it was configured with.

On the local cluster the builder is deployed (or found) by ``localkube.addons.buildkit.builder``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .kube import Cluster
from .registrycreds import with_credential

pytestmark = pytest.mark.e2e

CERTS = "/run/secrets/buildkit"
SECRET = "buildkit-client"
DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM ruby:3.1
RUN ruby -e 'File.write("/greeting", "hello from ruby #{RUBY_VERSION}\\n")'
COPY app.rb /app/app.rb
CMD ["ruby", "/app/app.rb"]
"""
APP = 'print File.read("/greeting")\nputs "token {token}"\n'
DIGEST = re.compile(r"^DIGEST=(sha256:[0-9a-f]{64})$", re.M)


@dataclass(frozen=True)
class Builder:
    address: str
    client_namespace: str
    client_secret: str
    client_image: str
    builder_image: str
    registry: str
    namespace: str
    statefulset: str


@pytest.fixture(scope="module")
def builder(cluster: Cluster) -> Builder:
    if not cluster.local:
        pytest.skip("BuildKit e2e tests need the local cluster's builder and registry")
    from localkube.addons.buildkit import builder as buildkit
    from localkube.addons.buildkit import images as buildkit_images
    from localkube.addons.registry import server as registry
    from localkube.config import Paths

    started = time.monotonic()
    address = buildkit.up(Paths.default())
    print(f"\nbuildkit up (deploy or check) {time.monotonic() - started:.1f}s")
    return Builder(
        address,
        buildkit.CLIENT_NAMESPACE,
        buildkit.CLIENT_SECRET,
        buildkit_images.BUILDCTL_IMAGE,
        buildkit_images.BUILDKIT_IMAGE,
        registry.HOST,
        buildkit.NAMESPACE,
        buildkit.NAME,
    )


def lend_client_secret(cluster: Cluster, builder: Builder, namespace: str) -> None:
    """What the operator does for a build pod: a copy of its client Secret, in the pod's namespace."""
    source = cluster.json("get", "secret", builder.client_secret, "-n", builder.client_namespace)
    copy = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": source["type"],
        "metadata": {"name": SECRET},
        "data": source["data"],
    }
    cluster.apply(namespace, copy)


def context_map(name: str, files: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": files}


def build_pod(
    builder: Builder,
    name: str,
    script: str,
    *,
    context: str | None = None,
    secret: str | None = SECRET,
    env: dict[str, str] | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """A pod running ``script`` in the buildctl image; ``/ctx`` holds the context ConfigMap."""
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if context:
        volumes.append({"name": "ctx", "configMap": {"name": context}})
        mounts.append({"name": "ctx", "mountPath": "/ctx", "readOnly": True})
    if secret:
        volumes.append({"name": "certs", "secret": {"secretName": secret}})
        mounts.append({"name": "certs", "mountPath": CERTS, "readOnly": True})
    variables = {"BUILDKIT_HOST": builder.address, "BUILDKIT_WAIT": "60", **(env or {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 900,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "build",
                    "image": image or builder.client_image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "env": [{"name": k, "value": v} for k, v in variables.items()],
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
        },
    }


def build_script(ref: str) -> str:
    """Copy the context out of the ConfigMap (its files are symlinks), build, print the digest."""
    return (
        "set -e; mkdir /tmp/ctx; cp -L /ctx/* /tmp/ctx/;"
        " buildctl-shipway build --progress=plain --frontend dockerfile.v0"
        " --local context=/tmp/ctx --local dockerfile=/tmp/ctx"
        f" --output type=image,name={ref},push=true --metadata-file /tmp/meta.json;"
        ' echo "DIGEST=$(sed -n \'s/.*"containerimage.digest": *"\\([^"]*\\)".*/\\1/p\''
        ' /tmp/meta.json)"'
    )


def run_pod(
    cluster: Cluster, namespace: str, pod: dict[str, Any], timeout: float = 900
) -> tuple[str, str, int]:
    """Create ``pod``, wait for its end; its phase, log and exit code."""
    cluster.apply(namespace, pod)
    name = pod["metadata"]["name"]
    done = cluster.wait_pod(namespace, name, timeout=timeout)
    state = done["status"]["containerStatuses"][0]["state"].get("terminated", {})
    return done["status"]["phase"], cluster.logs(namespace, name), int(state.get("exitCode", -1))


def test_a_pod_with_client_certificates_builds_pushes_and_a_second_pod_runs_it_by_digest(
    cluster: Cluster, builder: Builder, namespace: str
) -> None:
    from localkube.addons.buildkit.build import steps

    lend_client_secret(cluster, builder, namespace)
    token = secrets.token_hex(6)
    cluster.apply(
        namespace, context_map("ctx", {"Dockerfile": DOCKERFILE, "app.rb": APP.format(token=token)})
    )
    ref = f"{builder.registry}/{namespace}/app:1"  # its own folder (token auth: its rights)

    started = time.monotonic()
    phase, log, code = run_pod(
        cluster,
        namespace,
        with_credential(
            cluster, namespace, build_pod(builder, "build-1", build_script(ref), context="ctx")
        ),
    )
    first_seconds = time.monotonic() - started
    assert (phase, code) == ("Succeeded", 0), log
    digest = DIGEST.search(log)
    assert digest, log
    names, cached = steps(log)
    assert any(n.startswith("RUN ruby") for n in names), log
    copy = next(n for n in names if n.startswith("COPY app.rb"))
    assert copy not in cached, "a context never built before cannot come from the cache"

    run = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "run"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "app", "image": f"{builder.registry}/{namespace}/app@{digest[1]}"}
            ],
        },
    }
    phase, out, code = run_pod(cluster, namespace, with_credential(cluster, namespace, run), 300)
    assert (phase, code) == ("Succeeded", 0), out
    lines = out.splitlines()
    assert re.fullmatch(r"hello from ruby 3\.1\.\d+", lines[0]), out
    assert lines[1:] == [f"token {token}"], out

    started = time.monotonic()
    phase, log2, code = run_pod(
        cluster,
        namespace,
        with_credential(
            cluster, namespace, build_pod(builder, "build-2", build_script(ref), context="ctx")
        ),
    )
    second_seconds = time.monotonic() - started
    assert (phase, code) == ("Succeeded", 0), log2
    names2, cached2 = steps(log2)
    assert names2, log2
    assert set(cached2) == set(names2), f"not from the cache: {set(names2) - set(cached2)}\n{log2}"
    again = DIGEST.search(log2)
    assert again, log2
    assert again[1] == digest[1]
    print(f"\nbuild pods: first {first_seconds:.1f}s, rebuild from cache {second_seconds:.1f}s")


def test_a_pod_without_a_client_certificate_is_refused_by_the_builder(
    cluster: Cluster, builder: Builder, namespace: str, tmp_path: Path
) -> None:
    lend_client_secret(cluster, builder, namespace)
    # Only the builder's CA: the pod can verify the server, but has no certificate to show.
    only_ca = cluster.json("get", "secret", SECRET, "-n", namespace)["data"]["ca.crt"]
    cluster.apply(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ca-only"},
            "data": {"ca.crt": only_ca},
        },
    )
    raw = f"buildctl --addr {builder.address} --tlscacert {CERTS}/ca.crt --timeout 10 debug workers"
    phase, log, code = run_pod(
        cluster, namespace, build_pod(builder, "no-cert-raw", raw, secret="ca-only")
    )
    assert phase == "Failed"
    assert code != 0
    assert re.search(r"tls: certificate required|broken pipe|bad certificate", log), log

    phase, log, code = run_pod(
        cluster,
        namespace,
        build_pod(builder, "no-cert", "buildctl-shipway debug workers", secret="ca-only"),
    )
    assert (phase, code) == ("Failed", 3)
    assert f"the BuildKit client certificate is missing ({CERTS}/tls.crt)" in log

    # A certificate from another CA (trusting the builder's CA itself) is refused too.
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=intruder"],
        check=True, capture_output=True,
    )  # fmt: skip
    cluster.apply(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "foreign"},
            "data": {
                "ca.crt": only_ca,
                "tls.crt": base64.b64encode(crt.read_bytes()).decode(),
                "tls.key": base64.b64encode(key.read_bytes()).decode(),
            },
        },
    )
    phase, log, code = run_pod(
        cluster,
        namespace,
        build_pod(builder, "foreign", "buildctl-shipway debug workers", secret="foreign"),
    )
    assert (phase, code) == ("Failed", 5), log
    assert f"the builder at {builder.address} refused this client's TLS certificate" in log


def test_an_unreachable_builder_fails_the_build_pod_in_bounded_time_naming_it(
    cluster: Cluster, builder: Builder, namespace: str
) -> None:
    lend_client_secret(cluster, builder, namespace)
    # A Service with no pods behind it: kube-proxy rejects connections to it.
    cluster.apply(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "no-builder"},
            "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 1234}]},
        },
    )
    address = f"tcp://no-builder.{namespace}.svc:1234"
    pod = build_pod(builder, "unreachable", "buildctl-shipway build --frontend dockerfile.v0",
                    env={"BUILDKIT_HOST": address, "BUILDKIT_WAIT": "10"})  # fmt: skip
    started = time.monotonic()
    phase, log, code = run_pod(cluster, namespace, pod, timeout=120)
    elapsed = time.monotonic() - started
    assert (phase, code) == ("Failed", 4), log
    assert f"the builder (buildkitd at {address}) is unreachable" in log
    assert "gave up waiting for the builder after 10s" in log
    assert elapsed < 60


def test_a_full_cache_volume_is_named(cluster: Cluster, builder: Builder, namespace: str) -> None:
    """A throwaway buildkitd (the builder's image) whose state is a 64 MiB tmpfs."""
    script = (
        "buildkitd --root /state --addr unix:///run/bk.sock >/tmp/bkd.log 2>&1 &"
        " mkdir /tmp/ctx && head -c 100000000 /dev/zero > /tmp/ctx/big"
        " && printf 'FROM scratch\\nCOPY big /big\\n' > /tmp/ctx/Dockerfile"
        " && BUILDKIT_HOST=unix:///run/bk.sock BUILDKIT_WAIT=30 buildctl-shipway build"
        " --frontend dockerfile.v0 --local context=/tmp/ctx --local dockerfile=/tmp/ctx"
    )
    pod = build_pod(builder, "full", script, secret=None, image=builder.builder_image)
    container = pod["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True}
    container["volumeMounts"] = [{"name": "state", "mountPath": "/state"}]
    pod["spec"]["volumes"] = [
        {"name": "state", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}
    ]
    phase, log, code = run_pod(cluster, namespace, pod, timeout=300)
    assert (phase, code) == ("Failed", 1), log  # buildctl's own exit code, diagnosed
    assert "no space left on device" in log
    assert "the builder's cache volume is full" in log


def test_the_builder_runs_with_its_cache_cap_and_parallelism(
    cluster: Cluster, builder: Builder
) -> None:
    from localkube.addons.buildkit import builder as buildkit

    pod = f"{builder.statefulset}-0"
    spec = cluster.json("get", "pod", pod, "-n", builder.namespace)["spec"]
    assert spec["automountServiceAccountToken"] is False
    context = spec["containers"][0]["securityContext"]
    if buildkit.MODE == "rootless":  # an unprivileged user; its builds in a user namespace
        assert context["runAsUser"] == 1000
        assert not context.get("privileged")
        assert "capabilities" not in context
        status = cluster.kubectl(
            "exec", "-n", builder.namespace, pod, "--", "cat", "/proc/1/status"
        )
        assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    else:
        assert context["privileged"] is True
    (claim,) = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert claim["name"] == "cache"
    config = cluster.kubectl(
        "exec", "-n", builder.namespace, pod, "--", "cat", "/etc/buildkit/config/buildkitd.toml"
    )
    assert f"max-parallelism = {buildkit.MAX_PARALLELISM}" in config
    workers = cluster.kubectl(
        "exec", "-n", builder.namespace, pod, "--",
        "buildctl", "--addr", "unix:///run/buildkit/buildkitd.sock", "debug", "workers", "--verbose",
    )  # fmt: skip
    # The catch-all rule (All: true) holds the whole cache under the cap (printed in GB).
    rule = re.search(r"All:\s+true\n(?:\t.*\n)*?\tMaximum used space:\s+([0-9.]+)GB", workers)
    assert rule, workers
    cap = buildkit.CACHE["maxUsedSpace"]
    assert cap.endswith("GiB")
    assert float(rule[1]) == pytest.approx(int(cap[:-3]) * 2**30 / 1e9), workers


def test_the_charts_own_certificates_let_a_build_pod_in(
    cluster: Cluster, builder: Builder, namespace: str
) -> None:
    """buildkit.deploy with no Secrets given: the chart's generated CA, server and client
    certificates (sprig genCA/genSignedCert) work with buildkitd and the Service's name."""
    from localkube import config
    from localkube.addons.buildkit import builder as buildkit
    from localkube.config import Paths
    from localkube.toolchain import build

    values = buildkit.chart_values(None)
    values["fullnameOverride"] = "chk"
    values["buildkit"].update(serverSecret="", clientSecret="", namespace=namespace)
    rendered = subprocess.run(
        [str(build.binary(Paths.default(), "helm")), "template", "chk", str(buildkit.CHART),
         "--namespace", namespace, "--kube-version", config.KUBERNETES_VERSION,
         "--show-only", "templates/buildkit.yaml", "--show-only", "templates/buildkit-tls.yaml",
         "--values", "-"],
        input=json.dumps(values), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=rendered)
    cluster.kubectl(
        "rollout", "status", "-n", namespace, "statefulset/chk-buildkitd", "--timeout=180s"
    )
    address = f"tcp://chk-buildkitd.{namespace}.svc:1234"
    pod = build_pod(builder, "chart-certs", "buildctl-shipway debug workers",
                    secret="chk-buildkit-client", env={"BUILDKIT_HOST": address})  # fmt: skip
    phase, log, code = run_pod(cluster, namespace, pod, timeout=120)
    assert (phase, code) == ("Succeeded", 0), log
    assert "linux/amd64" in log
