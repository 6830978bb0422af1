"""``add_docker``: a Docker daemon beside a service's container, as Codeship gives one (pure).

The daemon runs as a native sidecar of the pod (an init container with ``restartPolicy:
Always``, started before the step and stopped after it), privileged, since ``dockerd`` makes
namespaces, cgroups, mounts and iptables rules for its containers. Its socket is on an
``emptyDir`` mounted at ``/var/run`` in both containers, so the step finds
``/var/run/docker.sock`` and ``DOCKER_HOST`` as on Codeship; its images and containers are on
another ``emptyDir``, gone with the pod. Pulls of Docker Hub images go through the cluster's
registry mirror when the operator knows one (``--registry-mirror``, its CA under
``/etc/docker/certs.d``).

A privileged container is a node-level power, so the feature is the administrator's choice:
off unless the operator is told ``SHIPWAY_DOCKER`` (chart value ``docker.enabled``), and then
only in the namespaces of ``SHIPWAY_DOCKER_NAMESPACES`` (``docker.namespaces``) when it is set.
:func:`refusal` says how to turn it on; the operator fails such a Pipeline with it and the
webhook refuses it at ``kubectl apply``. ``shipway validate``, which knows no cluster, accepts
``add_docker``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from shipway.engine.objects import Manifest
from shipway.engine.settings import DockerConfig

CONTAINER = "shipway-docker"
RUN_VOLUME = "shipway-docker-run"
DATA_VOLUME = "shipway-docker-data"
CA_VOLUME = "shipway-docker-ca"
RUN_DIR = "/var/run"
SOCKET = f"{RUN_DIR}/docker.sock"
DOCKER_HOST = f"unix://{SOCKET}"
CHART_VALUE = "docker.enabled"
NAMESPACES_VALUE = "docker.namespaces"

START = r"""
# On cgroup v2 the daemon needs a cgroup of its own with controllers delegated below it:
# move this container's processes into a leaf and enable every controller at the root.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mkdir -p /sys/fs/cgroup/shipway-init
  while read -r pid; do
    echo "$pid" > /sys/fs/cgroup/shipway-init/cgroup.procs 2>/dev/null || :
  done < /sys/fs/cgroup/cgroup.procs
  for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || :
  done
fi
rm -f /var/run/docker.pid /var/run/docker.sock
exec "$@"
"""


def refusal(namespace: str, wanting: Sequence[str], config: DockerConfig) -> str | None:
    """Why the services ``wanting`` a daemon may not have one here; None when they may."""
    names = list(wanting)
    if not names:
        return None
    where = f"spec.services.{names[0]}.add_docker"
    if not config.enabled:
        return (
            f"{where}: this operator runs no Docker daemons (they need privileged containers); "
            f"an administrator turns them on with the Helm chart value {CHART_VALUE}=true "
            f"(SHIPWAY_DOCKER=on), optionally only in some namespaces ({NAMESPACES_VALUE})"
        )
    if config.namespaces and namespace not in config.namespaces:
        allowed = ", ".join(config.namespaces)
        return (
            f"{where}: Docker daemons are not allowed in namespace {namespace}; the Helm chart "
            f"value {NAMESPACES_VALUE} lists where they are (now: {allowed})"
        )
    return None


def daemon_container(config: DockerConfig) -> Manifest:
    """The ``dockerd`` sidecar: privileged, its socket in the shared ``/var/run``."""
    args = ["dockerd", f"--host={DOCKER_HOST}", "--data-root=/var/lib/docker"]
    mounts: list[Manifest] = [
        {"name": RUN_VOLUME, "mountPath": RUN_DIR},
        {"name": DATA_VOLUME, "mountPath": "/var/lib/docker"},
    ]
    if config.mirror:
        args.append(f"--registry-mirror=https://{config.mirror}")
        if config.ca_config_map:
            mounts.append(
                {
                    "name": CA_VOLUME,
                    "mountPath": f"/etc/docker/certs.d/{config.mirror}",
                    "readOnly": True,
                }
            )
    return {
        "name": CONTAINER,
        "image": config.image,
        "command": ["sh", "-c", START, "shipway-docker"],
        "args": args,
        "restartPolicy": "Always",
        "securityContext": {"privileged": True},
        "env": [{"name": "DOCKER_HOST", "value": DOCKER_HOST}],
        "volumeMounts": mounts,
        "startupProbe": {
            "exec": {"command": ["docker", "version"]},
            "periodSeconds": 1,
            "timeoutSeconds": 5,
            "failureThreshold": 120,
        },
    }


def volumes(config: DockerConfig) -> list[Manifest]:
    result: list[Manifest] = [
        {"name": RUN_VOLUME, "emptyDir": {}},
        {"name": DATA_VOLUME, "emptyDir": {}},
    ]
    if config.mirror and config.ca_config_map:
        result.append(
            {
                "name": CA_VOLUME,
                "configMap": {
                    "name": config.ca_config_map,
                    "optional": True,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                },
            }
        )
    return result


def sidecar(clients: Iterable[str], config: DockerConfig) -> Callable[[Manifest], None]:
    """:func:`attach` as a transformer of the pod frame (:mod:`shipway.engine.pods.frame`)."""
    names = list(clients)

    def apply(spec: Manifest) -> None:
        attach(spec, names, config)

    return apply


def attach(spec: Manifest, clients: Iterable[str], config: DockerConfig) -> None:
    """Give the pod spec a daemon and the named containers its socket (in place).

    The daemon goes first among the init containers, so it is up before a generator (an
    init container) or a linked service that uses it, and before the step.
    """
    names = set(clients)
    if not names:
        return
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        if container["name"] not in names:
            continue
        env = [e for e in container.get("env", []) if e.get("name") != "DOCKER_HOST"]
        container["env"] = [*env, {"name": "DOCKER_HOST", "value": DOCKER_HOST}]
        container["volumeMounts"] = [
            *container.get("volumeMounts", []),
            {"name": RUN_VOLUME, "mountPath": RUN_DIR},
        ]
    spec["initContainers"] = [daemon_container(config), *spec.get("initContainers", [])]
    spec["volumes"] = [*spec.get("volumes", []), *volumes(config)]
