"""A webhook payload read per forge into one :class:`Event` (pure).

Shaped after each forge's documented payloads: GitHub's ``push`` and ``pull_request``,
GitLab's ``Push Hook``, ``Tag Push Hook`` and ``Merge Request Hook``, Bitbucket Cloud's
``repo:push`` and ``pullrequest:created/updated``, Gitea's ``push`` and ``pull_request``.
Anything else is :class:`Unhandled` with the reason the receiver answers (202).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shipway.models.repository import Provider

Kind = Literal["push", "tag", "pull_request"]


@dataclass(frozen=True)
class Event:
    """What ran, where, by whom: everything the decision and the Pipeline need."""

    kind: Kind
    repository: str
    """owner/name of the repository the hook belongs to (the base, for a pull request)."""
    ref: str
    """The branch or tag name (a pull request: its head branch)."""
    commit: str
    delivery: str = ""
    message: str = ""
    committer_name: str = ""
    committer_email: str = ""
    committer_username: str = ""
    pr_number: str = ""
    base_ref: str = ""
    head_repository: str = ""
    """A pull request's head repository (owner/name): another one means a fork."""

    @property
    def fork(self) -> bool:
        return self.kind == "pull_request" and self.head_repository not in ("", self.repository)


@dataclass(frozen=True)
class Unhandled:
    reason: str


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def _text(doc: Any, *path: str) -> str:
    value = _get(doc, *path)
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""


def _split_ref(ref: str) -> tuple[Kind, str] | None:
    if ref.startswith("refs/heads/"):
        return "push", ref.removeprefix("refs/heads/")
    if ref.startswith("refs/tags/"):
        return "tag", ref.removeprefix("refs/tags/")
    return None


PR_ACTIONS = {
    "github": {"opened", "synchronize", "reopened"},
    "gitea": {"opened", "synchronized", "reopened"},
    "gitlab": {"open", "update", "reopen"},
}
ZERO = "0" * 40


def parse(provider: Provider, headers: Mapping[str, str], body: bytes) -> Event | Unhandled:
    """The event a delivery describes, or why it does not run anything."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Unhandled("the body is not JSON")
    if not isinstance(doc, dict):
        return Unhandled("the body is not a JSON object")
    parser = {"github": _github, "gitea": _gitea, "gitlab": _gitlab, "bitbucket": _bitbucket}
    return parser[provider](headers, doc)


def _hub_push(doc: dict[str, Any], delivery: str) -> Event | Unhandled:
    """GitHub's and Gitea's push payloads (Gitea copied GitHub's shape)."""
    split = _split_ref(_text(doc, "ref"))
    if split is None:
        return Unhandled(f"push to {_text(doc, 'ref')!r}: not a branch or tag")
    kind, name = split
    after = _text(doc, "after")
    if doc.get("deleted") is True or after in ("", ZERO):
        return Unhandled(f"{name} was deleted")
    head = _get(doc, "head_commit") or {}
    return Event(
        kind=kind,
        repository=_text(doc, "repository", "full_name"),
        ref=name,
        commit=after,
        delivery=delivery,
        message=_text(head, "message"),
        committer_name=_text(head, "committer", "name") or _text(head, "author", "name"),
        committer_email=_text(head, "committer", "email") or _text(head, "author", "email"),
        committer_username=_text(head, "committer", "username")
        or _text(doc, "pusher", "login")
        or _text(doc, "pusher", "name"),
    )


def _hub_pull(doc: dict[str, Any], delivery: str, actions: set[str]) -> Event | Unhandled:
    action = _text(doc, "action")
    if action not in actions:
        return Unhandled(f"pull request action {action!r} runs nothing")
    pr = _get(doc, "pull_request") or {}
    return Event(
        kind="pull_request",
        repository=_text(doc, "repository", "full_name") or _text(pr, "base", "repo", "full_name"),
        ref=_text(pr, "head", "ref"),
        commit=_text(pr, "head", "sha"),
        delivery=delivery,
        message=_text(pr, "title"),
        committer_username=_text(pr, "user", "login"),
        pr_number=_text(doc, "number") or _text(pr, "number"),
        base_ref=_text(pr, "base", "ref"),
        head_repository=_text(pr, "head", "repo", "full_name"),
    )


def _github(headers: Mapping[str, str], doc: dict[str, Any]) -> Event | Unhandled:
    event = _header(headers, "X-GitHub-Event")
    delivery = _header(headers, "X-GitHub-Delivery")
    if event == "push":
        return _hub_push(doc, delivery)
    if event == "pull_request":
        return _hub_pull(doc, delivery, PR_ACTIONS["github"])
    return Unhandled(f"GitHub event {event or '(none)'!r} runs nothing")


def _gitea(headers: Mapping[str, str], doc: dict[str, Any]) -> Event | Unhandled:
    event = _header(headers, "X-Gitea-Event")
    delivery = _header(headers, "X-Gitea-Delivery")
    if event == "push":
        return _hub_push(doc, delivery)
    if event == "pull_request":
        return _hub_pull(doc, delivery, PR_ACTIONS["gitea"])
    return Unhandled(f"Gitea event {event or '(none)'!r} runs nothing")


def _gitlab(headers: Mapping[str, str], doc: dict[str, Any]) -> Event | Unhandled:
    event = _header(headers, "X-Gitlab-Event")
    delivery = _header(headers, "X-Gitlab-Event-UUID") or _header(headers, "X-Gitlab-Webhook-UUID")
    kind = _text(doc, "object_kind")
    if kind in ("push", "tag_push"):
        split = _split_ref(_text(doc, "ref"))
        after = _text(doc, "checkout_sha") or _text(doc, "after")
        if split is None:
            return Unhandled(f"push to {_text(doc, 'ref')!r}: not a branch or tag")
        if after in ("", ZERO):
            return Unhandled(f"{split[1]} was deleted")
        commits = [c for c in (_get(doc, "commits") or []) if _text(c, "id") == after]
        head = commits[-1] if commits else {}
        return Event(
            kind=split[0],
            repository=_text(doc, "project", "path_with_namespace"),
            ref=split[1],
            commit=after,
            delivery=delivery,
            message=_text(head, "message") or _text(doc, "message"),
            committer_name=_text(head, "author", "name") or _text(doc, "user_name"),
            committer_email=_text(head, "author", "email") or _text(doc, "user_email"),
            committer_username=_text(doc, "user_username"),
        )
    if kind == "merge_request":
        attrs = _get(doc, "object_attributes") or {}
        action = _text(attrs, "action")
        if action not in PR_ACTIONS["gitlab"]:
            return Unhandled(f"merge request action {action!r} runs nothing")
        return Event(
            kind="pull_request",
            repository=_text(doc, "project", "path_with_namespace")
            or _text(attrs, "target", "path_with_namespace"),
            ref=_text(attrs, "source_branch"),
            commit=_text(attrs, "last_commit", "id"),
            delivery=delivery,
            message=_text(attrs, "last_commit", "message") or _text(attrs, "title"),
            committer_name=_text(attrs, "last_commit", "author", "name"),
            committer_email=_text(attrs, "last_commit", "author", "email"),
            committer_username=_text(doc, "user", "username"),
            pr_number=_text(attrs, "iid"),
            base_ref=_text(attrs, "target_branch"),
            head_repository=_text(attrs, "source", "path_with_namespace"),
        )
    return Unhandled(f"GitLab event {event or kind or '(none)'!r} runs nothing")


def _bitbucket(headers: Mapping[str, str], doc: dict[str, Any]) -> Event | Unhandled:
    event = _header(headers, "X-Event-Key")
    delivery = _header(headers, "X-Request-UUID") or _header(headers, "X-Hook-UUID")
    repository = _text(doc, "repository", "full_name")
    if event == "repo:push":
        changes = _get(doc, "push", "changes") or []
        news = [c.get("new") for c in changes if isinstance(c, Mapping) and c.get("new")]
        if not news:
            return Unhandled("a push that only deletes runs nothing")
        new = news[-1]
        kind: Kind = "tag" if _text(new, "type") in ("tag", "annotated_tag") else "push"
        target = _get(new, "target") or {}
        raw = _text(target, "author", "raw")
        name, _, email = raw.partition(" <")
        return Event(
            kind=kind,
            repository=repository,
            ref=_text(new, "name"),
            commit=_text(target, "hash"),
            delivery=delivery,
            message=_text(target, "message"),
            committer_name=name.strip(),
            committer_email=email.rstrip(">").strip(),
            committer_username=_text(target, "author", "user", "nickname")
            or _text(doc, "actor", "nickname"),
        )
    if event in ("pullrequest:created", "pullrequest:updated"):
        pr = _get(doc, "pullrequest") or {}
        return Event(
            kind="pull_request",
            repository=repository or _text(pr, "destination", "repository", "full_name"),
            ref=_text(pr, "source", "branch", "name"),
            commit=_text(pr, "source", "commit", "hash"),
            delivery=delivery,
            message=_text(pr, "title"),
            committer_username=_text(pr, "author", "nickname"),
            pr_number=_text(pr, "id"),
            base_ref=_text(pr, "destination", "branch", "name"),
            head_repository=_text(pr, "source", "repository", "full_name"),
        )
    return Unhandled(f"Bitbucket event {event or '(none)'!r} runs nothing")
