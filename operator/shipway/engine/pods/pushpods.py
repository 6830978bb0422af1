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

from typing import Any

from shipway.engine.intents import PushTarget
from shipway.engine.naming import (
    ANNOTATION_DEFAULT_CONTAINER,
    ANNOTATION_STEP_NAME,
    GENERATOR_CONTAINER,
    LABEL_ATTEMPT,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    LABEL_STEP,
    MANAGED_BY,
)
from shipway.engine.settings import PushConfig

Manifest = dict[str, Any]
CONTAINER = "push"
PUSH_UID = 65532
CREDENTIALS_MOUNT = "/run/secrets/shipway-registry"
GENERATED_MOUNT = "/run/shipway-dockercfg"
GENERATED_FILE = f"{GENERATED_MOUNT}/dockercfg"
CA_MOUNT = "/etc/shipway/registry-ca"
MESSAGE_LIMIT = 3800


# The pod's program. POSIX sh (busybox). It writes the termination message the operator
# reads: {"image","digest"} on success, the failure's one-line reason otherwise.
SCRIPT = r"""
set -u
out=${SHIPWAY_TERMINATION_LOG:-/dev/termination-log}
tmp=${TMPDIR:-/tmp}
say() { echo "shipway-push: $*" >&2; }
fail() { say "$*"; printf '%s\n' "$*" | tail -c 3800 > "$out"; exit 1; }
if [ -n "${SHIPWAY_DOCKERCFG:-}" ]; then
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


def push_pod_manifest(
    target: PushTarget,
    config: PushConfig,
    *,
    name: str,
    namespace: str,
    pipeline: str,
    step_id: str,
    step_name: str,
    attempt: int,
    owner: Manifest,
    secret: str | None,
    generator: tuple[str, Manifest] | None = None,
    extra: Manifest | None = None,
) -> Manifest:
    """The Pod pushing one image.

    ``secret``: the dockerconfigjson Secret to push with; ``generator``: (service name, its
    container) writing the credentials instead; ``extra``: pod fields the caller decides
    (deadline, placement, imagePullSecrets, volumes the generator mounts).
    """
    env: list[tuple[str, str]] = [
        ("HOME", "/tmp"),
        ("SHIPWAY_SOURCE", target.source),
        ("SHIPWAY_TARGET", target.target),
        ("SHIPWAY_DIGEST", target.digest),
    ]
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]
    init: list[Manifest] = []
    if generator is not None:
        service, made = generator
        volumes.append({"name": "dockercfg", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
        mounts.append({"name": "dockercfg", "mountPath": GENERATED_MOUNT})
        init.append(
            {
                **made,
                "name": GENERATOR_CONTAINER,
                "args": [GENERATED_FILE],
                "volumeMounts": [
                    *made.get("volumeMounts", []),
                    {"name": "dockercfg", "mountPath": GENERATED_MOUNT},
                ],
            }
        )
        env += [("SHIPWAY_DOCKERCFG", GENERATED_FILE), ("SHIPWAY_DOCKERCFG_SERVICE", service)]
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
        volumes.append(
            {
                "name": "registry-ca",
                "configMap": {
                    "name": config.ca_config_map,
                    "optional": True,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                },
            }
        )
        mounts.append({"name": "registry-ca", "mountPath": CA_MOUNT, "readOnly": True})
        env.append(("SSL_CERT_DIR", f"{CA_MOUNT}:/etc/ssl/certs"))
    container: Manifest = {
        "name": CONTAINER,
        "image": config.image,
        "command": ["sh", "-c", SCRIPT, "shipway-push"],
        "env": [{"name": k, "value": v} for k, v in env],
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PUSH_UID,
            "runAsGroup": PUSH_UID,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    spec: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 5,
        "containers": [container],
        **(extra or {}),
    }
    spec["volumes"] = [*spec.get("volumes", []), *volumes]
    if init:
        spec["initContainers"] = init
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                LABEL_PIPELINE: pipeline,
                LABEL_STEP: step_id,
                LABEL_ATTEMPT: str(attempt),
                LABEL_MANAGED_BY: MANAGED_BY,
            },
            "annotations": {
                ANNOTATION_STEP_NAME: step_name,
                ANNOTATION_DEFAULT_CONTAINER: CONTAINER,
            },
            "ownerReferences": [owner],
        },
        "spec": spec,
    }
