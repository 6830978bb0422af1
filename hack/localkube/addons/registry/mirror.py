"""The base images users build from, pushed into the in-cluster registry under their Docker
Hub names (``library/busybox:latest``, ...), which containerd and BuildKit use as their
``docker.io`` mirror. Pushed with crane (go-containerregistry), never by hand-written HTTP.

Each image is an archive from ``imageset``/``baseimages`` (cached by content); a tag is
pushed only when the registry lacks it or holds another digest, so a warm ``up`` costs one
``crane digest`` per tag.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from localkube import config
from localkube.addons.registry import server as registry
from localkube.addons.registry import token as registrytoken
from localkube.cluster.runtime import in_node_mounts, log
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.images import debian as baseimages
from localkube.images import docker as dockerimage
from localkube.images import recipes as imageset
from localkube.images.oci import ImageInfo
from localkube.images.recipes import Mirrored, Recipe, ensure_archive
from localkube.process import run
from localkube.toolchain import build

ROOT = config.REPO
PUSH_TIMEOUT = 600


MIRRORED: tuple[Mirrored, ...] = (
    Mirrored("library/busybox", ("latest", "1.36"), "busybox"),
    Mirrored("library/redis", ("latest", "7", "7.0"), "redis"),
    *baseimages.MIRRORED,
)


def recipes() -> dict[str, Recipe]:
    return {**imageset.RECIPES, **baseimages.RECIPES, **dockerimage.RECIPES}


def selected(names: Iterable[str] | None) -> list[Mirrored]:
    """What ``push_all`` pushes: every image ``up`` needs (None), or the named ones, which
    may include those built only on demand (``dockerimage.ON_DEMAND``)."""
    everything = with_project_bases(MIRRORED, ROOT / "Dockerfile")
    if names is None:
        return everything
    wanted = set(names)
    unknown = wanted - set(recipes())
    if unknown:
        raise LocalkubeError(f"no mirrored image {', '.join(sorted(unknown))}")
    return [m for m in [*everything, *dockerimage.ON_DEMAND] if m.recipe in wanted]


def dockerfile_bases(text: str) -> list[str]:
    """The images a Dockerfile's ``FROM`` lines name, ARG defaults substituted, stages skipped."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        arg = re.match(r"(?i)ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line)
        if arg:
            args[arg.group(1)] = arg.group(2).strip("\"'")
            continue
        frm = re.match(r"(?i)FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line)
        if not frm:
            continue
        image = re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), ""), frm.group(1)
        )
        if image.lower() not in stages and image != "scratch" and image not in bases:
            bases.append(image)
        if frm.group(2):
            stages.add(frm.group(2).lower())
    return bases


def docker_hub_repo(image: str) -> tuple[str, str] | None:
    """``debian:12`` -> ``("library/debian", "12")``; None for other registries or digests."""
    if "@" in image:
        return None
    name, _, tag = image.partition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if parts[0] not in ("docker.io", "index.docker.io"):
            return None
        parts = parts[1:]
    if len(parts) == 1:
        parts = ["library", *parts]
    return "/".join(parts), tag or "latest"


def with_project_bases(mirrored: Iterable[Mirrored], dockerfile: Path) -> list[Mirrored]:
    """Add the tags the project's own Dockerfile starts from to the repositories mirrored."""
    wanted: dict[str, list[str]] = {}
    if dockerfile.is_file():
        for image in dockerfile_bases(dockerfile.read_text()):
            found = docker_hub_repo(image)
            if found:
                wanted.setdefault(found[0], []).append(found[1])
    result = []
    for m in mirrored:
        extra = tuple(t for t in wanted.get(m.repo, []) if t not in m.tags)
        result.append(Mirrored(m.repo, m.tags + extra, m.recipe))
    return result


# -- crane --------------------------------------------------------------------------------


def crane(
    paths: Paths, *args: str, check: bool = True, timeout: float = 60
) -> tuple[int, str, str]:
    """Run crane trusting the cluster CA (Go reads SSL_CERT_FILE).

    With token auth on (``registrytoken``), as the admin and inside the node's mount
    namespace, where the token service's name resolves (the realm crane fetches tokens at).
    """
    argv = [str(build.binary(paths, "crane")), *args]
    env = {"SSL_CERT_FILE": str(paths.pki / "ca.crt")}
    if registrytoken.active(paths):
        argv = in_node_mounts(paths, argv)
        env["DOCKER_CONFIG"] = str(registrytoken.admin_config_dir(paths))
    proc = run(
        argv,
        env=env,
        check=check,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def remote_digest(paths: Paths, ref: str) -> str | None:
    """The digest ``ref`` has in the registry; None if it has no such tag."""
    rc, out, err = crane(paths, "digest", ref, check=False, timeout=30)
    if rc == 0:
        return out.strip()
    if "MANIFEST_UNKNOWN" in err or "NAME_UNKNOWN" in err or "404" in err:
        return None
    host = ref.split("/", 1)[0]
    raise LocalkubeError(f"the registry ({host}) does not answer crane: {err.strip()}")


def _space_hint(paths: Paths) -> str:
    try:
        free = shutil.disk_usage(paths.storage).free
    except OSError:
        return ""
    return f" (the registry's volume, under {paths.storage}, has {free / 2**30:.1f} GiB free)"


def push(paths: Paths, info: ImageInfo, repo: str, tags: Iterable[str]) -> None:
    """Push the archive once under its first tag, then add the other tags (manifest puts)."""
    tags = list(tags)
    first = f"{registry.SERVICE_IP}/{repo}:{tags[0]}"
    with tempfile.TemporaryDirectory(prefix="localkube-push-") as tmp:
        with tarfile.open(info.archive) as tar:
            tar.extractall(tmp, filter="tar")
        try:
            crane(paths, "push", tmp, first, timeout=PUSH_TIMEOUT)
        except LocalkubeError as exc:
            raise LocalkubeError(
                f"pushing {repo} to the registry failed{_space_hint(paths)}: {exc}"
            ) from exc
    for tag in tags[1:]:
        crane(paths, "tag", first, tag, timeout=60)


def push_all(paths: Paths, names: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Make every mirrored tag point at its image's digest; return ``(ref, digest)`` pairs."""
    books = recipes()
    done: list[tuple[str, str]] = []
    started, pushed = time.monotonic(), 0
    for m in selected(names):
        info = ensure_archive(books[m.recipe], paths)
        refs = [f"{registry.SERVICE_IP}/{m.repo}:{t}" for t in m.tags]
        stale = [
            t
            for t, ref in zip(m.tags, refs, strict=True)
            if remote_digest(paths, ref) != info.manifest_digest
        ]
        if stale:
            log(f"pushing docker.io/{m.repo}:{','.join(stale)} into the registry")
            push(paths, info, m.repo, stale)
            pushed += len(stale)
        done += [(f"docker.io/{m.repo}:{t}", info.manifest_digest) for t in m.tags]
    if pushed:
        log(f"pushed {pushed} tag(s) into the registry in {time.monotonic() - started:.0f}s")
    return done
