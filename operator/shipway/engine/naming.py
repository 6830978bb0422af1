"""Deterministic Kubernetes names: the same pipeline and step always give the same pod name.

Determinism is what makes the operator idempotent: creating a step's pod twice fails with
AlreadyExists instead of running the step twice, whatever the operator crashed in between.
Names carry a short hash of the Pipeline's UID, so they are unique per pipeline *instance*:
pipeline ``foo`` with step ``1 y`` and pipeline ``foo-1`` with step ``y`` do not meet, nor a
pipeline and the one of the same name that replaced it. A name alone never proves ownership,
though: an object is a pipeline's only if its controller ownerReference names its UID.

Builds name their pod, their Secret, the image and the cache in the registry here too.

The image of a service is ``<registry>/<namespace>/<pipeline>-<uid hash>/<service>``: the
namespace keeps two teams apart, the Pipeline's UID two pipelines of one name (a re-run), so no
image can be mistaken for another's. Pods then run it by digest, never by this name.

The cache of a project is ``<registry>/<namespace>/cache/<project>/<service>:<branch>``:
no other namespace's build imports or exports it (the operator, not the Pipeline's author,
chooses the name). Who may read or write it is the registry's to enforce (docs/registry.md).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

# They live in spec, below the engine (the compiler checks names with them), re-exported here.
from shipway.compiler.dnsnames import dns_label as dns_label
from shipway.compiler.dnsnames import short_hash as short_hash
from shipway.compiler.source import CompiledSource, GitCheckout
from shipway.engine.objects import PipelineRef

LABEL_PIPELINE = "shipway.dev/pipeline"
LABEL_STEP = "shipway.dev/step"
LABEL_ATTEMPT = "shipway.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "shipway"
ANNOTATION_STEP_NAME = "shipway.dev/step-name"
ANNOTATION_PIPELINE_UID = "shipway.dev/pipeline-uid"
"""On the workspace claim: whose it is, also when it is kept (and has no ownerReference)."""
ANNOTATION_SEAL = "shipway.dev/seal"
"""On every pod the operator creates: an HMAC only it can make (see engine.ownership)."""
ANNOTATION_DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
"""Names the step's container, so that `kubectl logs POD` and the planner read that one."""

MAX_POD_NAME = 63


def instance_tag(uid: str) -> str:
    """Five hex digits of the Pipeline's UID: tells instances of one name apart."""
    return short_hash(uid)


def pvc_name(pipeline: str, uid: str) -> str:
    """The workspace claim the operator creates (``<pipeline>-<tag>-workspace``)."""
    return f"{pipeline}-{instance_tag(uid)}-workspace"


def container_name(service: str) -> str:
    """Service names may hold '_', '.', upper case and '/', container names may not."""
    return dns_label(service)


_SUBDOMAIN = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def host_names(service: str) -> list[str]:
    """Host names a linked service answers to: its name where it is one, else its forms that
    are (``hostAliases`` take lower-case DNS names only).

    ``webApp`` is listed as ``webapp``: glibc and Go look /etc/hosts up ignoring case, so
    ``webApp`` reaches it there (musl compares exactly: use ``webapp`` on Alpine). A name with
    ``/`` (``test/php-7.2``) is no host name at all; it answers to ``test-php-7.2`` and
    ``test-php-7-2``. ``my_db`` answers to ``my-db``.
    """
    lower = service.lower()
    candidates = [lower, re.sub(r"[^a-z0-9.-]+", "-", lower).strip("-."), dns_label(service)]
    names: list[str] = []
    for name in candidates:
        if len(name) <= 253 and _SUBDOMAIN.fullmatch(name) and name not in names:
            names.append(name)
    return names


def label_value(text: str) -> str:
    """``text`` as a label value (63 characters of ``[A-Za-z0-9_.-]``); a hash when it had
    to change, so two texts never share one."""
    if len(text) <= 63 and _LABEL_VALUE.fullmatch(text):
        return text
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:56].strip("-_.")
    return f"{slug}-{short_hash(text)}" if slug else short_hash(text)


@functools.lru_cache(maxsize=16384)
def pod_name(pipeline: str, uid: str, step_id: str, step_name: str, *, attempt: int = 0) -> str:
    """``<pipeline>-<tag>-<id>[-r<attempt>]-<step slug>``, at most 63 characters.

    The tag (a hash of the Pipeline's UID) makes it unique per pipeline instance, the id
    unique within the pipeline; a long pipeline name is cut, the tag still tells it apart.
    Cached: every plan names every step's pod (a hash and a slug each).
    """
    suffix = f"{instance_tag(uid)}-{step_id}" + (f"-r{attempt}" if attempt else "")
    prefix = pipeline
    if len(prefix) + 1 + len(suffix) > MAX_POD_NAME - 6:
        prefix = pipeline[: MAX_POD_NAME - 6 - 1 - len(suffix)].rstrip("-")
    base = f"{prefix}-{suffix}" if prefix else suffix
    room = MAX_POD_NAME - len(base) - 1
    slug = dns_label(step_name, room) if room >= 3 else ""
    return f"{base}-{slug}" if slug and slug != "x" else base


SOURCE_TASK = "source"
"""The source task's id: its pod's ``shipway.dev/step`` label (step ids are numbers)."""


def source_pod_name(ref: PipelineRef, source: CompiledSource) -> str:
    """Named by the same rule as step pods: ``<pipeline>-<uid hash>-source-checkout`` (or
    ``-upload``), so a name never collides with another instance's pods."""
    return pod_name(ref.name, ref.uid, SOURCE_TASK, task_title(source))


CHECKOUT_TIMEOUT = 3600
"""A checkout still running after this long fails (a server that accepts and never answers)."""


CHECKOUT_CONTAINER = "checkout"


UPLOAD_CONTAINER = "upload"


def task_title(source: CompiledSource) -> str:
    """The word used in pod names, logs and ``shipway logs --step``: checkout or upload."""
    return CHECKOUT_CONTAINER if isinstance(source, GitCheckout) else UPLOAD_CONTAINER


BUILD_CONTAINER = "build"
"""The build pod's buildctl container (its start time is the build's)."""
INSPECT_CONTAINER = "inspect"


GENERATOR_CONTAINER = "dockercfg"


# -- builds: pods, images and caches ---------------------------------------------------------

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_NOT_COMPONENT = re.compile(r"[^a-z0-9._-]+")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
CACHE_DIR = "cache"
"""Never a pipeline's component: those always end in ``-<uid hash>``."""


def repo_component(text: str) -> str:
    """``text`` as one path component of a registry repository; a hash when it had to change."""
    if _COMPONENT.fullmatch(text) and len(text) <= 63:
        return text
    slug = _NOT_COMPONENT.sub("-", text.lower())
    slug = re.sub(r"[._-]{2,}", "-", slug).strip("._-")[:50].strip("._-") or "x"
    return f"{slug}-{short_hash(text, 8)}"


def tag_for(text: str) -> str:
    """A branch name as an image tag (``feature/x`` → ``feature-x-<hash>``)."""
    if _TAG.fullmatch(text):
        return text
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip(".-")[:110] or "x"
    return f"{slug}-{short_hash(text, 8)}"


BUILD_TASK_PREFIX = "build-"


def build_task_id(service: str) -> str:
    """A build pod's ``shipway.dev/step`` label: ``build-<service>`` (step ids are numbers).

    A label value holds 63 characters of ``[A-Za-z0-9_.-]``; a longer one keeps a hash of the
    service's name, and so does one with other characters (``test/php-7.2``).
    """
    task = f"{BUILD_TASK_PREFIX}{service}"
    if len(task) <= 63 and label_value(task) == task:
        return task
    if label_value(task[:56].rstrip("._-")) != task[:56].rstrip("._-"):
        return label_value(task)
    return f"{task[:56].rstrip('._-')}-{short_hash(service)}"


def uid_hash(uid: str) -> str:
    return short_hash(uid, 8)


def image_repository(
    registry: str, namespace: str, pipeline: str, uid: str, *, service: str
) -> str:
    """Where one pipeline's image of one service is pushed (without tag or digest)."""
    owner = repo_component(f"{pipeline}-{uid_hash(uid)}")
    return f"{registry.rstrip('/')}/{repo_component(namespace)}/{owner}/{repo_component(service)}"


def normalise_git_url(url: str) -> str:
    """A git URL without credentials, scheme, port noise or ``.git``: one project, one name.

    ``https://user:token@Git.Example.com/team/app.git`` and ``git@git.example.com:team/app``
    are the same project.
    """
    text = url.strip()
    scp = re.fullmatch(r"(?:[^@/]+@)?([^:/]+):(?!//)(.*)", text)
    if scp and "://" not in text:
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(text)
        host, path = parts.hostname or "", parts.path
    path = re.sub(r"/+", "/", path).strip("/").removesuffix(".git")
    return f"{host.lower()}/{path}" if host else path


def project_key(
    cache_key: str | None, git_url: str | None, generate_name: str | None, name: str
) -> str:
    """Which project a pipeline belongs to, for its builds' cache (first that is set).

    ``spec.cacheKey``; else the git URL of ``spec.source``; else the Pipeline's
    ``generateName`` (``shipway run`` names every run ``<project>-<random>``); else its name.
    """
    if cache_key:
        return repo_component(cache_key)
    if git_url:
        normal = normalise_git_url(git_url)
        last = normal.rsplit("/", 1)[-1] or "repo"
        return f"{repo_component(last.lower())}-{short_hash(normal, 8)}"
    if generate_name and generate_name.strip("-"):
        return repo_component(generate_name.strip("-"))
    return repo_component(name)


def cache_repository(registry: str, namespace: str, project: str, service: str) -> str:
    return (
        f"{registry.rstrip('/')}/{repo_component(namespace)}/{CACHE_DIR}/{project}/"
        f"{repo_component(service)}"
    )


def build_pod_name(pipeline: str, uid: str, service: str) -> str:
    """``<pipeline>-<uid hash>-build-<service>``, at most 63 characters, unique per UID.

    A service name that is not a DNS label as it is (``_``, ``.``) or is long gets a hash, so
    two services never share a pod name.
    """
    label = dns_label(service, 30)
    if label != service:
        label = f"{dns_label(service, 24)}-{short_hash(service)}"
    tail = f"-{uid_hash(uid)[:5]}-build-{label}"
    room = MAX_POD_NAME - len(tail)
    head = pipeline
    if len(head) > room:
        head = f"{pipeline[: room - 6].rstrip('-')}-{short_hash(pipeline)}"
    return f"{head}{tail}"


def build_secret_name(pipeline: str, uid: str) -> str:
    """The per-pipeline copy of the builder's client certificate (and push credentials)."""
    base = f"{pipeline[:40].rstrip('-')}-{uid_hash(uid)[:5]}-build"
    return base if len(pipeline) <= 40 else f"{base}-{short_hash(pipeline)}"
