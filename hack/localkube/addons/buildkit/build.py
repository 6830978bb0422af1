"""Builds on the local cluster's BuildKit from the host, and the operator image built that way.

The host reaches buildkitd through its Service's ClusterIP (kube-proxy's rules cover host
processes too) with the client certificate localkube issued (``pki/buildkit``), exactly as a
build pod does with the client Secret. The operator image is built from the repository's own
``Dockerfile`` (its ``# syntax=docker/dockerfile:1`` frontend and its ``debian`` base come from
the in-cluster docker.io mirror; apt and PyPI from the network) and pushed to the in-cluster
registry, where the node's containerd pulls it: what docs/helm.md tells users to build is what
the Helm e2e tests install.

``python -m localkube.addons.buildkit.build`` (``make operator-image``) builds and pushes it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from localkube import config
from localkube.addons.buildkit import builder as buildkit
from localkube.addons.registry import server as registry
from localkube.addons.registry import token as registrytoken
from localkube.cluster.runtime import in_node_mounts, kubectl
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.process import run
from localkube.toolchain import build

ROOT = config.REPO
#: The operator image in the local registry: the chart's repository path under its host.
OPERATOR_REPOSITORY = f"{registry.HOST}/shipway-dev/shipway"
OPERATOR_TAG = "0.1.0"
BUILD_TIMEOUT = 1800
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: A step BuildKit served from its cache: ``#7 CACHED`` in ``--progress=plain`` output.
CACHED = re.compile(r"^#(\d+) CACHED$", re.M)
#: A step's header: ``#7 [build 3/6] RUN apt-get update …`` (the Dockerfile's own steps).
STEP = re.compile(r"^#(\d+) \[[^\]]*\d+/\d+\] (.+)$", re.M)


@dataclass(frozen=True)
class Result:
    ref: str
    digest: str
    seconds: float
    #: The Dockerfile steps (``RUN``, ``COPY``, …) and those served from the cache.
    steps: tuple[str, ...]
    cached: tuple[str, ...]
    log: str

    @property
    def pinned(self) -> str:
        return f"{self.ref.rsplit(':', 1)[0]}@{self.digest}"


def steps(log: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Dockerfile's build steps (``RUN``, ``COPY``, …; not the ``FROM`` pulls) in a plain
    progress log, and those BuildKit reported ``CACHED``."""
    names = {m[1]: m[2] for m in STEP.finditer(log) if not m[2].startswith("FROM ")}
    cached = {m[1] for m in CACHED.finditer(log)}
    return tuple(names.values()), tuple(v for k, v in names.items() if k in cached)


def buildctl_argv(
    buildctl: str, address: str, certs: buildkit.Certs, context: Path, *, ref: str, metadata: Path
) -> list[str]:
    """``buildctl build`` of ``context``'s Dockerfile, pushed as ``ref``."""
    return [
        buildctl, "--addr", address, "--tlsservername", buildkit.SERVICE_DNS,
        "--tlscacert", str(certs.ca), "--tlscert", str(certs.client_crt),
        "--tlskey", str(certs.client_key),
        "build", "--progress=plain", "--frontend", "dockerfile.v0",
        "--local", f"context={context}", "--local", f"dockerfile={context}",
        "--output", f"type=image,name={ref},push=true", "--metadata-file", str(metadata),
        # The host's CA bundle, for a Dockerfile that fetches over HTTPS (the operator's pip)
        # where a proxy intercepts TLS; a secret, so it is in no layer and no cache key.
        "--secret", f"id=ca-bundle,src={CA_BUNDLE}",
    ]  # fmt: skip


def host_address(paths: Paths) -> str:
    ip = kubectl(paths, "get", "service", buildkit.NAME, "-n", buildkit.NAMESPACE, "-o",
                 "jsonpath={.spec.clusterIP}", check=False).strip()  # fmt: skip
    if not ip:
        raise LocalkubeError(
            f"BuildKit is not deployed ({buildkit.NAMESPACE}/{buildkit.NAME} has no Service):"
            " run `python -m localkube up` (not --core-only) or `python -m localkube.addons.buildkit.builder up`"
        )
    return f"tcp://{ip}:1234"


def build_dockerfile(
    paths: Paths, context: Path, ref: str, *, timeout: float = BUILD_TIMEOUT
) -> Result:
    """Build ``context`` (its Dockerfile and .dockerignore) with the cluster's BuildKit; push."""
    certs = buildkit.client_certs(paths)
    buildctl = str(build.binary(paths, "buildctl"))
    with tempfile.TemporaryDirectory(prefix="localkube-build-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        argv = buildctl_argv(
            buildctl, host_address(paths), certs, context, ref=ref, metadata=metadata
        )
        env: dict[str, str] = {}
        if registrytoken.active(paths):  # token auth: push as the admin, where the realm resolves
            argv = in_node_mounts(paths, argv)
            env = {
                "DOCKER_CONFIG": str(registrytoken.admin_config_dir(paths)),
                "SSL_CERT_FILE": str(paths.pki / "ca.crt"),
            }
        started = time.monotonic()
        proc = run(argv, check=False, timeout=timeout, env=env)
        seconds = time.monotonic() - started
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            tail = "\n".join(output.splitlines()[-25:])
            raise LocalkubeError(f"BuildKit could not build {ref} from {context}:\n{tail}")
        digest = json.loads(metadata.read_text())["containerimage.digest"]
    names, cached = steps(output)
    return Result(ref, digest, seconds, names, cached, output)


def build_operator_image(paths: Paths | None = None, *, repo: Path = ROOT) -> Result:
    """The operator image, built from ``repo``'s Dockerfile and pushed to the local registry."""
    return build_dockerfile(paths or Paths.default(), repo, f"{OPERATOR_REPOSITORY}:{OPERATOR_TAG}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkube.addons.buildkit.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.parse_args(argv)
    try:
        result = build_operator_image()
    except LocalkubeError as exc:
        print(f"localkube: error: {exc}", file=sys.stderr)
        return 1
    print(f"{result.pinned}  ({result.seconds:.0f}s, {len(result.cached)}/{len(result.steps)}"
          " Dockerfile steps from the cache)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
