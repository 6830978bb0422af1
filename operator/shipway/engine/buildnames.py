"""Names of everything a build makes: its pod, its Secret, the image and the cache in the registry.

The image of a service is ``<registry>/<namespace>/<pipeline>-<uid hash>/<service>``: the
namespace keeps two teams apart, the Pipeline's UID two pipelines of one name (a re-run), so no
image can be mistaken for another's. Pods then run it by digest, never by this name.

The cache of a project is ``<registry>/<namespace>/cache/<project>/<service>:<branch>``:
no other namespace's build imports or exports it (the operator, not the Pipeline's author,
chooses the name). Who may read or write it is the registry's to enforce (docs/registry.md).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from shipway.engine.naming import MAX_POD_NAME, dns_label, label_value, short_hash

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


def image_repository(registry: str, namespace: str, pipeline: str, uid: str, service: str) -> str:
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
