"""Reading a built image's ``HEALTHCHECK`` from its configuration (pure).

Codeship polls a Dockerfile's ``HEALTHCHECK`` before it starts the steps of services that
depend on the image, so the check must be known before those pods are made. The image's
configuration is the truth (a ``HEALTHCHECK`` may come from the base image, or be turned off
with ``HEALTHCHECK NONE``), and BuildKit does not return it to its client: so a build pod whose
service another links gets a second container, run after the build, in the push image (crane
and a shell). It reads the configuration of the digest just pushed (``crane config``) and
writes only its ``Healthcheck`` object to its termination message; the operator keeps it in
the build's status and every pod linking the service gets it as a startupProbe.
"""

from __future__ import annotations

from shipway.engine.naming import INSPECT_CONTAINER
from shipway.engine.objects import Manifest
from shipway.engine.pods.push import registry_ca, script_prelude

RESULT_MOUNT = "/run/shipway-build"
DIGEST_FILE = f"{RESULT_MOUNT}/digest"
MESSAGE_LIMIT = 3800

# The container's program: POSIX sh and awk (busybox in crane's debug image). The awk scans
# the configuration's JSON (strings and escapes respected) for config.Healthcheck and prints
# that object as it is; nothing else of the configuration leaves the pod.
SCRIPT = (
    script_prelude("inspect")
    + r"""digest=$(cat "$SHIPWAY_DIGEST_FILE" 2>/dev/null)
[ -n "$digest" ] || fail "the build wrote no digest to $SHIPWAY_DIGEST_FILE"
ref="$SHIPWAY_REPOSITORY@$digest"
crane config ${SHIPWAY_CRANE_INSECURE:+--insecure} "$ref" > "$tmp/config.json" 2> "$tmp/log" ||
  fail "reading the configuration of $ref failed: $(sed 's/^Error: //' "$tmp/log" | tail -n 3)"
check=$(awk '
BEGIN { RS = "\001" }
{ s = s $0 }
END {
  n = length(s); depth = 0; instr = 0; esc = 0; last = ""; key = ""; inconfig = 0; start = 0
  for (i = 1; i <= n; i++) {
    c = substr(s, i, 1)
    if (instr) {
      if (esc) esc = 0
      else if (c == "\\") esc = 1
      else if (c == "\"") { instr = 0; last = substr(s, from, i - from) }
      continue
    }
    if (c == "\"") { instr = 1; from = i + 1; continue }
    if (c == ":") { key = last; continue }
    if (c == "{" || c == "[") {
      depth++
      if (depth == 2) inconfig = (c == "{" && key == "config")
      if (depth == 3 && c == "{" && inconfig && key == "Healthcheck") start = i
      key = ""
      continue
    }
    if (c == "}" || c == "]") {
      if (depth == 3 && start) { print substr(s, start, i - start + 1); exit }
      depth--
      key = ""
      continue
    }
    if (c == ",") key = ""
  }
}' "$tmp/config.json") || fail "the configuration of $ref is not JSON awk could read"
say "read the configuration of $ref: ${check:-no HEALTHCHECK}"
printf '{"healthcheck":%s}\n' "${check:-null}" | tail -c 3800 > "$out"
"""
)


def with_inspect(
    spec: Manifest,
    *,
    image: str,
    repository: str,
    ca_config_map: str | None,
    docker_config: str | None,
    insecure: bool = False,
) -> None:
    """Make the build pod's ``spec`` read the image's configuration after the build.

    The build container becomes an init container that also writes the digest into a shared
    folder; the inspect container (``image``: crane and sh) runs after it, unprivileged like
    it, trusting ``ca_config_map``'s CA and the build's registry credentials
    (``docker_config``: where the build mounts them).
    """
    (build,) = spec.pop("containers")
    result = {"name": "result", "mountPath": RESULT_MOUNT}
    build["volumeMounts"] = [*build["volumeMounts"], result]
    build["env"] = [*build["env"], {"name": "SHIPWAY_DIGEST_FILE", "value": DIGEST_FILE}]
    spec["volumes"] += [
        {"name": "result", "emptyDir": {"sizeLimit": "1Mi"}},
        {"name": "inspect-tmp", "emptyDir": {"sizeLimit": "16Mi"}},
    ]
    mounts: list[Manifest] = [
        {**result, "readOnly": True},
        {"name": "inspect-tmp", "mountPath": "/tmp"},
    ]
    env = [
        ("HOME", "/tmp"),
        ("SHIPWAY_DIGEST_FILE", DIGEST_FILE),
        ("SHIPWAY_REPOSITORY", repository),
    ]
    if insecure:
        env.append(("SHIPWAY_CRANE_INSECURE", "true"))
    if docker_config is not None:
        mounts.append({"name": "registry", "mountPath": docker_config, "readOnly": True})
        env.append(("DOCKER_CONFIG", docker_config))
    if ca_config_map:
        volume, mount, cert_dir = registry_ca(ca_config_map)
        spec["volumes"].append(volume)
        mounts.append(mount)
        env.append(cert_dir)
    spec["initContainers"] = [build]
    spec["containers"] = [
        {
            "name": INSPECT_CONTAINER,
            "image": image,
            "command": ["sh", "-c", SCRIPT, "shipway-inspect"],
            "env": [{"name": k, "value": v} for k, v in env],
            "volumeMounts": mounts,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {
                "requests": {"cpu": "10m", "memory": "32Mi"},
                "limits": {"memory": "128Mi"},
            },
            "securityContext": dict(build["securityContext"]),
        }
    ]
