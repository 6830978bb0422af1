"""The build pod: ``buildctl`` against the cluster's BuildKit, reading the checkout from the claim.

One pod per service with a ``build``, in the Pipeline's namespace (the claim holding the
checkout lives there), mounting it read-only at ``/workspace``. The pod carries no API token;
the builder's client certificate comes from a per-pipeline Secret the operator copies from its
own namespace and deletes once the builds are over. The image is pushed by BuildKit to the
cluster's registry; the pod reports the digest (or BuildKit's error lines) in its termination
message, which is all the operator reads of it: no log is ever read by the operator.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from shipway.compiler.builds import ResolvedBuild
from shipway.engine.intents import BuildToCreate
from shipway.engine.naming import (
    BUILD_CONTAINER,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    MANAGED_BY,
    build_task_id,
    label_value,
)
from shipway.engine.objects import Manifest
from shipway.engine.pods.containers import WORKSPACE_VOLUME
from shipway.engine.pods.frame import (
    PodFrame,
    PodMeta,
    Transformer,
    assemble,
    containers,
    deadline,
    tool_container,
)
from shipway.engine.pods.frame import volumes as add_volumes
from shipway.engine.pods.imageconfig import with_inspect
from shipway.engine.settings import BuildConfig, PushConfig

LABEL_BUILD = "shipway.dev/build"
WORKSPACE_MOUNT = "/workspace"
CERTS_MOUNT = "/run/secrets/buildkit"
DOCKER_CONFIG_MOUNT = "/run/secrets/registry"
SECRET_ARG_PREFIX = "SHIPWAY_SECRET_ARG_"
CONTAINER = BUILD_CONTAINER
BUILD_UID = 65532
"""buildctl needs no privilege: it reads the checkout (world-readable, as git writes it) and
its certificate (mode 0444 in a pod of one container)."""


# The pod's program: check the paths (a symlink in the checkout must not send the pod's own
# files to the builder), run buildctl, then write the digest or BuildKit's error lines to the
# termination message. POSIX sh: busybox in the client image, alpine's in moby/buildkit.
SCRIPT = r"""
set -u
ws=$(realpath "${SHIPWAY_WORKSPACE:-/workspace}")
out=${SHIPWAY_TERMINATION_LOG:-/dev/termination-log}
tmp=${TMPDIR:-/tmp}
say() { echo "shipway-build: $*" >&2; }
fail() { say "$*"; printf '%s\n' "$*" > "$out"; exit 2; }
inside() { case "$1" in "$ws"|"$ws"/*) return 0 ;; esac; return 1; }
real() { r=$(realpath "$1" 2>/dev/null) && inside "$r" && echo "$r"; }
ctx="$ws/$SHIPWAY_CONTEXT"
df="$ws/$SHIPWAY_DOCKERFILE"
[ -d "$ctx" ] || fail "the build context $SHIPWAY_CONTEXT is not a folder of the checkout"
rctx=$(real "$ctx") || fail "the build context $SHIPWAY_CONTEXT leads outside the checkout"
[ -d "$(dirname "$df")" ] ||
  fail "the folder of the Dockerfile $SHIPWAY_DOCKERFILE is not in the checkout"
if [ -L "$df" ]; then
  rdf=$(real "$df") || fail "the Dockerfile $SHIPWAY_DOCKERFILE leads outside the checkout"
else
  # A missing Dockerfile is BuildKit's to report, in its own words.
  rdir=$(real "$(dirname "$df")") ||
    fail "the Dockerfile $SHIPWAY_DOCKERFILE leads outside the checkout"
  rdf="$rdir/$(basename "$df")"
fi
set -- "$@" --local "context=$rctx" --local "dockerfile=$(dirname "$rdf")" \
  --opt "filename=$(basename "$rdf")" --metadata-file "$tmp/metadata.json"
for name in $(env | sed -n "s/^\(${SHIPWAY_SECRET_PREFIX}[A-Za-z0-9_]*\)=.*/\1/p"); do
  set -- "$@" --secret "id=${name#"$SHIPWAY_SECRET_PREFIX"},env=$name"
done
say "building $SHIPWAY_DOCKERFILE with the context $SHIPWAY_CONTEXT"
if command -v buildctl-shipway >/dev/null 2>&1; then
  set -- buildctl-shipway build "$@"
else
  set -- buildctl --addr "$BUILDKIT_HOST" --tlscacert "$BUILDKIT_CERTS/ca.crt" \
    --tlscert "$BUILDKIT_CERTS/tls.crt" --tlskey "$BUILDKIT_CERTS/tls.key" build "$@"
fi
{ "$@" 2>&1; echo "$?" > "$tmp/rc"; } | tee "$tmp/build.log"
rc=$(cat "$tmp/rc")
# The Dockerfile's steps (FROM aside: it is resolved, never CACHED), and which were CACHED.
steps=$(grep -E '^#[0-9]+ \[([^]]* )?[0-9]+/[0-9]+\] ' "$tmp/build.log" |
  grep -vE '^#[0-9]+ \[[^]]*\] FROM ' | cut -d' ' -f1 | sort -u)
cached=0
for s in $steps; do grep -qx "$s CACHED" "$tmp/build.log" && cached=$((cached + 1)); done
total=$(printf '%s\n' $steps | grep -c .)
if [ "$rc" -eq 0 ]; then
  digest=$(sed -n 's/.*"containerimage.digest": *"\(sha256:[0-9a-f]*\)".*/\1/p' \
    "$tmp/metadata.json" 2>/dev/null | head -n 1)
  [ -n "$digest" ] || fail "BuildKit pushed no image digest"
  printf '{"digest":"%s","cached":%s,"steps":%s}\n' "$digest" "$cached" "$total" > "$out"
  [ -z "${SHIPWAY_DIGEST_FILE:-}" ] || printf '%s\n' "$digest" > "$SHIPWAY_DIGEST_FILE"
  exit 0
fi
# BuildKit's summary from its first "------" block on, less the notes that a cache to import
# was not there yet (the first build of a branch): that is no error of the build.
awk '/^------$/ { if (skip) { skip = 0; next }
    if ((getline line) > 0 && line ~ /^ > importing cache manifest/) { skip = 1; next }
    print; print line; next }
  !skip' "$tmp/build.log" | sed -n '/^------$/,$p' > "$tmp/error"
[ -s "$tmp/error" ] || grep -E 'ERROR|error:|shipway-build:' "$tmp/build.log" > "$tmp/error"
[ -s "$tmp/error" ] || tail -n 20 "$tmp/build.log" > "$tmp/error"
tail -c 3800 "$tmp/error" > "$out"
exit "$rc"
"""


def buildctl_args(
    build: ResolvedBuild, create: BuildToCreate, *, insecure_registry: bool = False
) -> list[str]:
    """``buildctl build`` flags for one build; paths and secrets are added by the script."""
    insecure = ",registry.insecure=true" if insecure_registry else ""
    args = [
        "--progress=plain",
        "--frontend=dockerfile.v0",
        "--output",
        f"type=image,name={create.repository},push=true{insecure}",
    ]
    for key, value in create.args:
        args += ["--opt", f"build-arg:{key}={value}"]
    if build.target:
        args += ["--opt", f"target={build.target}"]
    if create.cache_repository is None:
        args.append("--no-cache")
    else:
        tags = create.cache_tags
        for tag in tags:
            args += [
                "--import-cache",
                f"type=registry,ref={create.cache_repository}:{tag}{insecure}",
            ]
        args += [
            "--export-cache",
            f"type=registry,ref={create.cache_repository}:{tags[0]},mode=max{insecure}",
        ]
    return args


def _env(build: ResolvedBuild, config: BuildConfig) -> list[tuple[str, str]]:
    pairs = [
        ("BUILDKIT_HOST", config.builder or ""),
        ("BUILDKIT_CERTS", CERTS_MOUNT),
        ("BUILDKIT_WAIT", str(config.wait_seconds)),
        ("HOME", "/tmp"),
        ("SHIPWAY_CONTEXT", build.context),
        (
            "SHIPWAY_DOCKERFILE",
            posixpath.normpath(posixpath.join(build.dockerfile_dir, build.dockerfile_name)),
        ),
        ("SHIPWAY_SECRET_PREFIX", SECRET_ARG_PREFIX),
    ]
    if config.registry_auth:
        pairs.append(("DOCKER_CONFIG", DOCKER_CONFIG_MOUNT))
    return pairs


def build_pod(
    build: ResolvedBuild,
    create: BuildToCreate,
    config: BuildConfig,
    frame: PodFrame,
    *,
    secret: str,
    inspect: PushConfig | None = None,
) -> Manifest:
    """The Pod building one service's image: beside the steps (same claim, same node).

    ``secret`` is the per-pipeline copy of the client certificate; ``inspect``: the image
    (crane) and CA that read the built image's HEALTHCHECK, when ``create.inspect`` asks for it.
    """
    volumes: list[Manifest] = [
        {
            "name": "buildkit-client",
            "secret": {
                "secretName": secret,
                "defaultMode": 0o444,
                "items": [{"key": k, "path": k} for k in ("ca.crt", "tls.crt", "tls.key")],
            },
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[Manifest] = [
        {"name": WORKSPACE_VOLUME, "mountPath": WORKSPACE_MOUNT, "readOnly": True},
        {"name": "buildkit-client", "mountPath": CERTS_MOUNT, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if config.registry_auth:
        volumes.append(
            {
                "name": "registry",
                "secret": {
                    "secretName": secret,
                    "defaultMode": 0o444,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
        mounts.append({"name": "registry", "mountPath": DOCKER_CONFIG_MOUNT, "readOnly": True})
    container = tool_container(
        CONTAINER,
        config.client_image,
        ["/bin/sh", "-c", SCRIPT, "shipway-build"],
        args=buildctl_args(build, create, insecure_registry=config.insecure),
        env=_env(build, config),
        mounts=mounts,
        uid=BUILD_UID,
    )
    if build.secret_sources:
        container["envFrom"] = [
            {"prefix": SECRET_ARG_PREFIX, "secretRef": {"name": name}}
            for name in build.secret_sources
        ]
    meta = PodMeta(
        create.name,
        build_task_id(build.service),
        0,
        CONTAINER,
        labels=((LABEL_BUILD, label_value(build.service)),),
    )
    return assemble(
        frame,
        meta,
        containers(container),
        frame.workspace(read_only=True),
        add_volumes(*volumes),
        _inspect(create, config, inspect),
        deadline(create.active_deadline),
        frame.pinned(),
        frame.placement(),
    )


def _inspect(
    create: BuildToCreate, config: BuildConfig, inspect: PushConfig | None
) -> Transformer | None:
    """Read the built image's HEALTHCHECK after the build, when a step links the service."""
    if not create.inspect or inspect is None:
        return None

    def apply(spec: Manifest) -> None:
        with_inspect(
            spec,
            image=inspect.image,
            repository=create.repository,
            ca_config_map=inspect.ca_config_map,
            docker_config=DOCKER_CONFIG_MOUNT if config.registry_auth else None,
            insecure=config.insecure,
        )

    return apply


def client_secret_manifest(
    name: str,
    namespace: str,
    owner: Manifest,
    pipeline: str,
    *,
    client: Mapping[str, str],
    docker_config: str | None,
) -> Manifest:
    """The per-pipeline Secret: the builder's client certificate (and push credentials).

    ``client`` holds the base64 values of ``ca.crt``, ``tls.crt`` and ``tls.key`` as read
    from the operator's Secret; they are copied, never decoded.
    """
    data = {key: client[key] for key in ("ca.crt", "tls.crt", "tls.key") if key in client}
    if docker_config is not None:
        data[".dockerconfigjson"] = docker_config
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL_PIPELINE: pipeline, LABEL_MANAGED_BY: MANAGED_BY},
            "ownerReferences": [owner],
        },
        "data": data,
    }
