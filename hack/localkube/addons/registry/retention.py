"""Retention of the in-cluster registry's images.

The rule (docs/registry.md): a tag keeps an image; an image of a finished Pipeline lives in
repositories under a prefix of its own and is deleted with it (``prune``: every manifest of
every repository under the prefix, through crane); ``gc`` then frees the blobs no manifest
references any more and the manifests no tag names. The mirrored base images
(``library/*``, ``docker/*``) are tagged and never pruned.

``gc`` follows distribution's advice: the registry serves read-only (pulls work, pushes get
503) while ``registry garbage-collect`` sweeps, and restarts afterwards so its in-memory blob
cache forgets what was deleted.
"""

from __future__ import annotations

from localkube.addons import rollout as addons
from localkube.addons.registry import server as registry
from localkube.addons.registry.mirror import crane
from localkube.cluster import pki
from localkube.cluster.runtime import kubectl, log
from localkube.config import Paths
from localkube.errors import LocalkubeError

PROTECTED = ("library/", "docker/")
GC_TIMEOUT = 600


def repositories_under(catalog: list[str], prefix: str) -> list[str]:
    """The repositories ``prune`` deletes: under ``prefix`` (a path prefix, not a substring),
    never a mirrored base image's."""
    clean = prefix.strip("/")
    if not clean:
        raise LocalkubeError("refusing to prune the whole registry: give a repository prefix")
    return [
        r
        for r in catalog
        if (r == clean or r.startswith(clean + "/")) and not r.startswith(PROTECTED)
    ]


def prune(paths: Paths, prefix: str) -> list[str]:
    """Delete every manifest of every repository under ``prefix``; return what was deleted."""
    host = registry.SERVICE_IP
    _, out, _ = crane(paths, "catalog", host, timeout=60)
    deleted: list[str] = []
    for repo in repositories_under(out.split(), prefix):
        _, tags, _ = crane(paths, "ls", f"{host}/{repo}", timeout=60)
        digests = {
            crane(paths, "digest", f"{host}/{repo}:{t}", timeout=30)[1].strip()
            for t in tags.split()
        }
        for digest in sorted(digests):
            crane(paths, "delete", f"{host}/{repo}@{digest}", timeout=60)
            deleted.append(f"{repo}@{digest}")
    return deleted


def gc(paths: Paths, keys: pki.Pki) -> str:
    """Sweep the registry in read-only mode; return the collector's summary."""
    log("registry: switching to read-only for garbage collection")
    addons.ensure_registry(paths, keys, read_only=True)
    try:
        out = kubectl(
            paths, "-n", registry.NAMESPACE, "exec", f"deployment/{registry.NAME}", "--",
            "/bin/registry", "garbage-collect", "--delete-untagged",
            f"{registry.CONFIG_DIR}/readonly.yml", timeout=GC_TIMEOUT,
        )  # fmt: skip
    finally:
        log("registry: back to read-write")
        addons.ensure_registry(paths, keys, read_only=False)
    summary = [line for line in out.splitlines() if "marked" in line or "eligible" in line]
    return "\n".join(summary[-5:]) or out.strip()[-2000:]
