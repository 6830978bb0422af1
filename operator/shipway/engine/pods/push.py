"""The push pod: ``crane copy`` of a built image, by digest, to the step's repository and tag.

No rebuild: the image the earlier steps ran (``repository@digest`` in the cluster's registry)
is copied as it is, so the pushed tag names exactly the digest that was tested; the pod then
asks the registry which digest the tag holds and reports it. crane (go-containerregistry) is
the well-kept tool for this; the pod only adds the checks and the report.

Credentials: a ``kubernetes.io/dockerconfigjson`` Secret mounted as ``DOCKER_CONFIG``, or
what a Codeship generator service (``dockercfg_service``) writes, run as an init container
into a memory-backed ``emptyDir`` and deleted as soon as it is read. They never reach the
termination message, the status or the operator: the pod reports only the reference and the
digest, or crane's error line (the registry's answer).
"""

from __future__ import annotations

from shipway.compiler.pipeline import CompiledPipeline
from shipway.engine.cienv import ci_environment
from shipway.engine.intents import PushToCreate
from shipway.engine.naming import GENERATOR_CONTAINER
from shipway.engine.objects import Manifest
from shipway.engine.pods import docker
from shipway.engine.pods.containers import service_container
from shipway.engine.pods.frame import (
    PodFrame,
    PodMeta,
    assemble,
    containers,
    deadline,
    init_containers,
    tool_container,
)
from shipway.engine.pods.frame import volumes as add_volumes
from shipway.engine.settings import PodOptions
from shipway.models import SourceStatus

CONTAINER = "push"
PUSH_UID = 65532
CREDENTIALS_MOUNT = "/run/secrets/shipway-registry"
GENERATED_MOUNT = "/run/shipway-dockercfg"
GENERATED_FILE = f"{GENERATED_MOUNT}/dockercfg"
CA_MOUNT = "/etc/shipway/registry-ca"
MESSAGE_LIMIT = 3800


def script_prelude(tool: str) -> str:
    """The start of a crane pod's program: where it reports, and how it says and fails
    (the reason, capped to the termination message's size, is the message)."""
    return (
        "\nset -u\n"
        "out=${SHIPWAY_TERMINATION_LOG:-/dev/termination-log}\n"
        "tmp=${TMPDIR:-/tmp}\n"
        f'say() {{ echo "shipway-{tool}: $*" >&2; }}\n'
        f'fail() {{ say "$*"; printf \'%s\\n\' "$*" | tail -c {MESSAGE_LIMIT}'
        ' > "$out"; exit 1; }\n'
    )


# The pod's program. POSIX sh (busybox). It writes the termination message the operator
# reads: {"image","digest"} on success, the failure's one-line reason otherwise.
SCRIPT = (
    script_prelude("push")
    + r"""if [ -n "${SHIPWAY_DOCKERCFG:-}" ]; then
  [ -s "$SHIPWAY_DOCKERCFG" ] ||
    fail "the dockercfg service $SHIPWAY_DOCKERCFG_SERVICE wrote no credentials"
  mkdir -p "$tmp/docker"
  # Codeship takes both the old .dockercfg form and config.json: wrap the old one.
  if grep -q '"auths"' "$SHIPWAY_DOCKERCFG"; then
    cat "$SHIPWAY_DOCKERCFG" > "$tmp/docker/config.json"
  else
    { printf '{"auths":'; cat "$SHIPWAY_DOCKERCFG"; printf '}'; } > "$tmp/docker/config.json"
  fi
  rm -f "$SHIPWAY_DOCKERCFG"
  export DOCKER_CONFIG="$tmp/docker"
elif [ -n "${SHIPWAY_DOCKERCFG_SECRET:-}" ]; then
  [ -s "$DOCKER_CONFIG/config.json" ] ||
    fail "Secret $SHIPWAY_DOCKERCFG_SECRET has no .dockerconfigjson (missing, or not of type kubernetes.io/dockerconfigjson)"
fi
say "copying $SHIPWAY_SOURCE to $SHIPWAY_TARGET"
{ crane copy ${SHIPWAY_CRANE_INSECURE:+--insecure} "$SHIPWAY_SOURCE" "$SHIPWAY_TARGET" 2>&1
  echo "$?" > "$tmp/rc"; } | tee "$tmp/log"
if [ "$(cat "$tmp/rc")" -ne 0 ]; then
  why=$(sed -n 's/^Error: //p' "$tmp/log" | tail -n 3)
  [ -n "$why" ] || why=$(tail -n 3 "$tmp/log")
  fail "pushing $SHIPWAY_TARGET failed: $why"
fi
digest=$(crane digest ${SHIPWAY_CRANE_INSECURE:+--insecure} "$SHIPWAY_TARGET" 2> "$tmp/log") ||
  fail "the registry does not show $SHIPWAY_TARGET after the push: $(sed 's/^Error: //' "$tmp/log" | tail -n 3)"
[ "$digest" = "$SHIPWAY_DIGEST" ] ||
  fail "the registry holds $digest under $SHIPWAY_TARGET, not the image the steps ran ($SHIPWAY_DIGEST)"
say "pushed $SHIPWAY_TARGET ($digest)"
printf '{"image":"%s","digest":"%s"}\n' "$SHIPWAY_TARGET" "$digest" > "$out"
"""
)


def push_pod(
    compiled: CompiledPipeline,
    create: PushToCreate,
    frame: PodFrame,
    options: PodOptions,
    *,
    source: SourceStatus | None = None,
) -> Manifest:
    """The Pod of one attempt of a push step.

    It pushes with the step's dockerconfigjson Secret, or with what its generator service
    writes (run first, as an init container; it mounts the claim only if its volumes ask).
    """
    run = compiled.run(create.step_id)
    push = run.push
    assert push is not None, f"step {run.id} is not a push step"
    config = options.push
    target = create.push
    env: list[tuple[str, str]] = [
        ("HOME", "/tmp"),
        ("SHIPWAY_SOURCE", target.source),
        ("SHIPWAY_TARGET", target.target),
        ("SHIPWAY_DIGEST", target.digest),
    ]
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]
    init: list[Manifest] = []
    generator = push.credentials.generator
    secret = push.credentials.secret
    if generator is not None:
        volumes.append({"name": "dockercfg", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
        mounts.append({"name": "dockercfg", "mountPath": GENERATED_MOUNT})
        init.append(_generator(compiled, create, frame, options, name=generator, source=source))
        env += [("SHIPWAY_DOCKERCFG", GENERATED_FILE), ("SHIPWAY_DOCKERCFG_SERVICE", generator)]
    elif secret is not None:
        volumes.append(
            {
                "name": "registry",
                "secret": {
                    "secretName": secret,
                    "optional": True,
                    "defaultMode": 0o444,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
        mounts.append({"name": "registry", "mountPath": CREDENTIALS_MOUNT, "readOnly": True})
        env += [("DOCKER_CONFIG", CREDENTIALS_MOUNT), ("SHIPWAY_DOCKERCFG_SECRET", secret)]
    if config.insecure:
        env.append(("SHIPWAY_CRANE_INSECURE", "true"))
    if config.ca_config_map:
        volume, mount, cert_dir = registry_ca(config.ca_config_map)
        volumes.append(volume)
        mounts.append(mount)
        env.append(cert_dir)
    container = tool_container(
        CONTAINER,
        config.image,
        ["sh", "-c", SCRIPT, "shipway-push"],
        env=env,
        mounts=mounts,
        uid=PUSH_UID,
    )
    mounted = generator is not None and bool(compiled.services[generator].mounts)
    docker_user = generator is not None and compiled.services[generator].docker
    meta = PodMeta(create.name, create.step_id, create.attempt, CONTAINER, run.name)
    return assemble(
        frame,
        meta,
        containers(container),
        frame.workspace() if mounted else None,
        frame.pinned() if mounted else None,
        frame.pulls(),
        deadline(create.active_deadline),
        frame.placement(),
        add_volumes(*volumes),
        init_containers(init),
        docker.sidecar([GENERATOR_CONTAINER] if docker_user else [], options.docker),
    )


def _generator(
    compiled: CompiledPipeline,
    create: PushToCreate,
    frame: PodFrame,
    options: PodOptions,
    *,
    name: str,
    source: SourceStatus | None,
) -> Manifest:
    """The generator service's container: writes the credentials into the memory volume."""
    service = compiled.services[name]
    env = ci_environment(frame.ref, compiled, source)
    images = dict(create.images)
    made = service_container(service, None, env, options.security_context, image=images.get(name))
    return {
        **made,
        "name": GENERATOR_CONTAINER,
        "args": [GENERATED_FILE],
        "volumeMounts": [
            *made.get("volumeMounts", []),
            {"name": "dockercfg", "mountPath": GENERATED_MOUNT},
        ],
    }


def registry_ca(config_map: str) -> tuple[Manifest, Manifest, tuple[str, str]]:
    """The registry's CA from ``config_map`` for crane: (volume, its mount, ``SSL_CERT_DIR``)."""
    volume = {
        "name": "registry-ca",
        "configMap": {
            "name": config_map,
            "optional": True,
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        },
    }
    mount = {"name": "registry-ca", "mountPath": CA_MOUNT, "readOnly": True}
    return volume, mount, ("SSL_CERT_DIR", f"{CA_MOUNT}:/etc/ssl/certs")
