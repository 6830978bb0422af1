"""Does an event run, under which Pipeline name, with which CI values (pure).

The name is derived from the Repository's UID and what was pushed (kind, ref, commit; a pull
request's number), never from the delivery id or a clock: a redelivered event, the same push
reported twice, or two receiver replicas handling it at once all make the same name, and the
API server's "already exists" makes the second one a no-op.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from shipway.compiler.dnsnames import dns_label
from shipway.models.repository import RepositorySpec
from shipway.triggers.events import Event

SKIP_CI = re.compile(r"\[(skip ci|ci skip)\]", re.IGNORECASE)
NAME_PREFIX = 40
HASH = 12
LABEL_REPOSITORY = "shipway.dev/repository"
LABEL_BRANCH = "shipway.dev/branch"
ANNOTATION_DELIVERY = "shipway.dev/delivery"
ANNOTATION_FORK = "shipway.dev/fork"


@dataclass(frozen=True)
class Run:
    name: str
    ci: dict[str, str]
    fork: bool
    branch_key: str
    """What concurrency groups by: the branch, ``tag:<name>`` or ``pr:<number>``."""


@dataclass(frozen=True)
class Skip:
    reason: str


def full_name(spec: RepositorySpec) -> str:
    """owner/name on the forge: spec.fullName, else the clone URL's path without .git."""
    if spec.fullName:
        return spec.fullName
    url = spec.url
    path = urlsplit(url).path if "://" in url else url.partition(":")[2]
    return path.strip("/").removesuffix(".git")


def matches(name: str, globs: list[str]) -> bool:
    """Shell globs; a glob starting with ``!`` excludes what it matches, whatever else says."""
    if any(fnmatchcase(name, g[1:]) for g in globs if g.startswith("!")):
        return False
    return any(fnmatchcase(name, g) for g in globs if not g.startswith("!"))


def pipeline_name(repository: str, uid: str, event: Event) -> str:
    what = event.pr_number if event.kind == "pull_request" else event.ref
    key = "\0".join((uid, event.kind, what, event.commit))
    digest = hashlib.sha256(key.encode()).hexdigest()[:HASH]
    return f"{dns_label(repository, NAME_PREFIX)}-{digest}"


def decide(spec: RepositorySpec, repository: str, uid: str, event: Event) -> Run | Skip:
    """Run it, or say why not (the receiver's 202 reason and the Repository's delivery)."""
    expected = full_name(spec)
    if event.repository.lower() != expected.lower():
        return Skip(f"the delivery is for {event.repository!r}, this Repository is {expected!r}")
    if not event.commit or not event.ref:
        return Skip("the payload names no commit or ref")
    if event.kind == "pull_request":
        if not spec.pullRequests:
            return Skip("pull requests do not run (spec.pullRequests: false)")
    else:
        skip = SKIP_CI.search(event.message)
        if skip:
            return Skip(f"{skip.group(0)} in the commit message")
    if event.kind == "tag" and not matches(event.ref, spec.tags):
        return Skip(f"tag {event.ref!r} matches none of spec.tags {spec.tags}")
    if event.kind == "push" and not matches(event.ref, spec.branches):
        return Skip(f"branch {event.ref!r} matches none of spec.branches {spec.branches}")
    ci = {
        "commitId": event.commit,
        "commitMessage": event.message[:4096],
        "committerName": event.committer_name,
        "committerEmail": event.committer_email,
        "committerUsername": event.committer_username,
        "repoName": expected.rsplit("/", 1)[-1],
        "projectId": uid,
    }
    if event.kind == "tag":
        ci["tag"] = event.ref
        branch_key = f"tag:{event.ref}"
    else:
        ci["branch"] = event.ref
        branch_key = event.ref
    if event.kind == "pull_request":
        ci["prNumber"] = event.pr_number
        ci["pullRequest"] = event.pr_number
        branch_key = f"pr:{event.pr_number}"
    ci = {k: v[:253] if k != "commitMessage" else v for k, v in ci.items() if v}
    return Run(pipeline_name(repository, uid, event), ci, event.fork, branch_key)
