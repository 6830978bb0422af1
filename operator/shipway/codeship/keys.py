"""Every key Codeship documents, and what the converter does with it.

Each key is handled one of three ways:

* ``mapped``: carried into the Pipeline (sometimes rewritten, e.g. ``link`` → ``links``);
* ``ignored``: dropped with a warning; Codeship itself ignores most of these (its list of
  "unavailable features"), the rest have no meaning on Kubernetes;
* ``error``: the conversion fails with a message that names the Kubernetes alternative,
  because silently dropping the key would change what the pipeline does.

The README's key table is checked against these tables by a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shipway.codeship.daemon import ADD_DOCKER


class Handling(StrEnum):
    MAPPED = "mapped"
    IGNORED = "ignored"
    ERROR = "error"


@dataclass(frozen=True)
class KeyRule:
    key: str
    handling: Handling
    note: str
    """What happens, in one line (also the warning or error text)."""


def _table(*rules: KeyRule) -> dict[str, KeyRule]:
    return {rule.key: rule for rule in rules}


M, IGN, E = Handling.MAPPED, Handling.IGNORED, Handling.ERROR

CODESHIP_IGNORES = "Codeship ignores this key"
MISPLACED_IN_BUILD = (
    "a key of the service, not of its build: no effect here, as on Codeship (move it up to "
    "the service to cache the build)"
)
MISPLACED_ON_STEP = (
    "a key of services, not of steps: no effect on a step, as on Codeship (set it on the "
    "step's service)"
)
HOST_FACING = "Codeship does not allow linking to the host"

BUILD_NOTE = (
    "built by BuildKit from the checkout (spec.source) before the first step that runs it; "
    "every pod of the service runs the image by digest; --prebuilt runs build.image instead"
)
ENCRYPTED_ARGS_NOTE = (
    "decrypted with the project's AES key (--aes-key, or codeship.aes) into a Secret the build "
    "reads (build.argsFrom); the Dockerfile reads each as a BuildKit secret "
    "(RUN --mount=type=secret,id=KEY,env=KEY), not ARG, so no value lands in the image"
)
ENCRYPTED_ENV_NOTE = (
    "decrypted with the project's AES key (--aes-key, or codeship.aes) into a Secret the "
    "service reads (envFrom); or --env-secret SERVICE=SECRET names a Secret that holds them"
)
NEEDS_KEY = "need the project's AES key (--aes-key FILE, or codeship.aes in the project directory)"
"""How every refusal of encrypted content without a key starts its advice."""
CACHE_NOTE = (
    "reuse the layers of the project's earlier builds (BuildKit's cache in the cluster's "
    "registry, per project and branch)"
)
DOCKERCFG_PATH_NOTE = (
    "decrypted with the project's AES key (--aes-key, or codeship.aes) into a "
    "kubernetes.io/dockerconfigjson Secret: a push step pushes with it (dockercfgSecret), a run "
    "step's pod pulls with it; or --dockercfg-secret NAME names a Secret that holds it"
)
DOCKERCFG_SERVICE_NOTE = (
    "push steps (and groups, for theirs) run the service before the push, with the file it "
    "must write the credentials to as its argument, as Codeship does; on a run step it is "
    "ignored (pods pull with a Secret: encrypted_dockercfg_path or --dockercfg-secret)"
)
SERVICE_DOCKERCFG_NOTE = (
    "decrypted (--aes-key) into a kubernetes.io/dockerconfigjson Secret every step pod pulls "
    "images with (spec.imagePullSecrets); or --dockercfg-secret NAME"
)
SERVICE_GENERATOR_NOTE = (
    "pods pull their images with a Secret: use encrypted_dockercfg_path or --dockercfg-secret "
    "(a service cannot write pull credentials at run time)"
)

SERVICE_KEYS: dict[str, KeyRule] = _table(
    KeyRule("image", M, "the container image"),
    KeyRule("build", M, BUILD_NOTE),
    KeyRule(
        "dockerfile",
        M,
        "compose v1 spelling of build.dockerfile, handled with build (ignored with a warning "
        "next to image without build)",
    ),
    KeyRule("command", M, "the service's default command (container args)"),
    KeyRule("entrypoint", M, "the container's entrypoint (container command)"),
    KeyRule("environment", M, "map or KEY=VALUE list; numbers keep their digits"),
    KeyRule(
        "env_file",
        M,
        "the file is read and its variables inlined into environment (they win over "
        "environment); keep secrets in a Secret and use envFrom instead",
    ),
    KeyRule(
        "encrypted_environment",
        M,
        ENCRYPTED_ENV_NOTE,
    ),
    KeyRule(
        "encrypted_env_file",
        M,
        ENCRYPTED_ENV_NOTE,
    ),
    KeyRule("working_dir", M, "the container's working directory"),
    KeyRule(
        "volumes",
        M,
        "host:container[:ro] becomes a subPath of the pipeline's workspace claim; /path is an "
        "anonymous volume of the service; ./ is the checkout when the Pipeline has a source "
        "(--git-url, --git-remote, or the upload of shipway run --dir)",
    ),
    KeyRule("volumes_from", M, "the other service's volumes, transitively (service:NAME too)"),
    KeyRule("links", M, "linked services run as sidecars of every step; name:alias kept"),
    KeyRule("link", M, "deprecated spelling of links (warning): merged into links"),
    KeyRule("depends_on", M, "like links; the compose map form keeps its service names"),
    KeyRule("healthcheck", M, "compose healthcheck; on a linked service it gates the step"),
    KeyRule("add_docker", M, ADD_DOCKER),
    KeyRule("cached", M, CACHE_NOTE),
    KeyRule(
        "default_cache_branch",
        M,
        "the branch whose cache a cached build starts from when its own branch has none",
    ),
    KeyRule("encrypted_dockercfg_path", M, SERVICE_DOCKERCFG_NOTE),
    KeyRule("dockercfg_service", IGN, SERVICE_GENERATOR_NOTE),
    KeyRule("resources", M, "Shipway extension: Kubernetes requests and limits, kept as is"),
    KeyRule("envFrom", M, "Shipway extension: Secrets and ConfigMaps as variables, kept as is"),
    # Codeship's documented "unavailable features": accepted and ignored by Codeship too.
    *(
        KeyRule(key, IGN, CODESHIP_IGNORES)
        for key in (
            "cgroup_parent",
            "container_name",
            "cpu_quota",
            "devices",
            "extends",
            "group_add",
            "init",
            "ipc",
            "isolation",
            "logging",
            "log_driver",
            "log_opt",
            "mac_address",
            "memswap_limit",
            "mem_swappiness",
            "networks",
            "network_mode",
            "oom_score_adj",
            "oom_scope_adj",
            "pid",
            "stop_signal",
            "stop_grace_period",
            "tty",
            "tmpfs",
            "ulimits",
            "volume_driver",
            "privileged",
            "labels",
        )
    ),
    *(KeyRule(key, IGN, HOST_FACING) for key in ("external_links", "ports", "stdin_open")),
    # Further docker-compose keys: no equivalent for a step's container in a pod.
    KeyRule(
        "hostname", IGN, "a step's containers share the pod; linked services answer to their names"
    ),
    KeyRule("domainname", IGN, "a step's containers share the pod's network"),
    KeyRule("dns", IGN, "the pod uses the cluster's DNS"),
    KeyRule("dns_search", IGN, "the pod uses the cluster's DNS"),
    KeyRule("extra_hosts", IGN, "linked services are reachable by name without it"),
    KeyRule("expose", IGN, "containers of one step share the pod's network"),
    KeyRule("restart", IGN, "steps never restart; use retries on the step"),
    KeyRule("user", IGN, "the container runs as the image's user"),
    KeyRule("cap_add", IGN, "no extra capabilities are granted"),
    KeyRule("cap_drop", IGN, "capabilities follow the operator's pod security settings"),
    KeyRule("security_opt", IGN, "security follows the operator's pod security settings"),
    KeyRule("read_only", IGN, "the container's root file system stays writable"),
    KeyRule("shm_size", IGN, "the container gets the runtime's default /dev/shm"),
    KeyRule("sysctls", IGN, "sysctls are not set on step pods"),
    KeyRule("cpu_shares", IGN, "use the resources extension (requests/limits)"),
    KeyRule("cpuset", IGN, "use the resources extension (requests/limits)"),
    KeyRule("cpus", IGN, "use the resources extension (requests/limits)"),
    KeyRule("mem_limit", IGN, "use the resources extension (requests/limits)"),
    KeyRule("mem_reservation", IGN, "use the resources extension (requests/limits)"),
    KeyRule("platform", IGN, "pods run on the node's platform"),
    KeyRule("pull_policy", IGN, "the kubelet's default image pull policy applies"),
)

BUILD_KEYS: dict[str, KeyRule] = _table(
    KeyRule("image", M, "Codeship's name for the image, shown in status (with --prebuilt: run)"),
    KeyRule("context", M, "the build context, a folder of the checkout"),
    KeyRule("dockerfile", M, "the Dockerfile, relative to the context"),
    KeyRule("path", M, "deprecated spelling of context (warning)"),
    KeyRule("dockerfile_path", M, "deprecated spelling of dockerfile (warning)"),
    KeyRule("args", M, "build args (Dockerfile ARG), a map or KEY=VALUE list"),
    KeyRule("encrypted_args_file", M, ENCRYPTED_ARGS_NOTE),
    KeyRule("encrypted_args", M, ENCRYPTED_ARGS_NOTE),
    # Keys of the service written inside build: Codeship ignored them there.
    *(KeyRule(key, IGN, MISPLACED_IN_BUILD) for key in ("cached", "default_cache_branch")),
)

SERVICES_FILE_KEYS: dict[str, KeyRule] = _table(
    KeyRule("version", IGN, "Codeship ignores it (silently)"),
    KeyRule("services", M, "the services, when not at the top level"),
    KeyRule("volumes", IGN, CODESHIP_IGNORES + " (top-level volumes)"),
    KeyRule("networks", IGN, CODESHIP_IGNORES + " (top-level networks)"),
    KeyRule("secrets", IGN, "compose secrets: use a Secret and envFrom"),
    KeyRule("configs", IGN, "compose configs: use a ConfigMap and envFrom"),
)

PUSH_NOTE = (
    "the image built for the step's service, copied by digest (crane) to image_name, tagged "
    "by image_tag; skipped unless pushes are on (shipway run --push, spec.push)"
)
MANUAL_NOTE = (
    "a group that waits for approval once every step before it is over (phase "
    "AwaitingApproval), then runs its steps in order: shipway approve / shipway reject"
)
MATRIX_NOTE = (
    "type: matrix is the old spelling of type: parallel with services: [..] (every service runs "
    "a copy of the steps, side by side); converted to that"
)

STEP_KEYS: dict[str, KeyRule] = _table(
    KeyRule("name", M, "unique name in status and logs (numbers keep their digits)"),
    KeyRule("service", M, "on a run step, or on a group as the default of its steps"),
    KeyRule(
        "command",
        M,
        "split like a shell would, not run through a shell (command: true is the command "
        "true); on a group or a push step it has no effect (ignored with a warning)",
    ),
    KeyRule("type", M, "serial, parallel, manual or push (matrix: deprecated parallel)"),
    KeyRule("steps", M, "the group's steps, nested to any depth"),
    KeyRule(
        "services",
        M,
        "group fan-out: one serial group per service (parallel: side by side; serial: one "
        "service after the other), as in Codeship's examples",
    ),
    KeyRule("tag", M, "build tag filter; regular expression when it contains ^ or $"),
    KeyRule("exclude", M, "build tag filter that wins over tag"),
    KeyRule("on_fail", M, "steps run when the step or group fails"),
    KeyRule("encrypted_dockercfg_path", M, DOCKERCFG_PATH_NOTE),
    KeyRule("dockercfg_service", M, DOCKERCFG_SERVICE_NOTE),
    KeyRule(
        "image_name",
        M,
        "push steps: the repository pushed to; a tag in it (name:tag) is the tag pushed "
        "unless image_tag is set",
    ),
    KeyRule("image_tag", M, "push steps: the tag, a Codeship template (default latest)"),
    KeyRule("registry", M, "push steps: the registry, when image_name names none"),
    KeyRule("timeout", M, "Shipway extension: stop the step after this long"),
    KeyRule("retries", M, "Shipway extension: new attempts when the step fails"),
    # Keys of services written on a step: Codeship ignored them there.
    *(
        KeyRule(key, IGN, MISPLACED_ON_STEP)
        for key in ("environment", "env_file", "encrypted_environment", "encrypted_env_file")
    ),
)

STEP_TYPES: dict[str, KeyRule] = _table(
    KeyRule("serial", M, "a serial group"),
    KeyRule("parallel", M, "a parallel group"),
    KeyRule("push", M, PUSH_NOTE),
    KeyRule("manual", M, MANUAL_NOTE),
    KeyRule("matrix", M, MATRIX_NOTE),
)

PUSH_STEP_KEYS = ("image_name", "image_tag", "registry")
"""Keys only a ``type: push`` step takes (elsewhere ignored with a warning, as on Codeship)."""
