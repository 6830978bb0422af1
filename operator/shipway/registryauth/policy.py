"""Which of the actions a client asks for its credential gets.

A scope is distribution's ``type:name:actions`` (``repository:team/app:pull,push``,
``registry:catalog:*``). The rules, in full:

* the admin gets whatever it asks for;
* a namespace gets ``pull`` and ``push`` on repositories under ``<prefix><namespace>/``;
* everyone, anonymous clients too, gets ``pull`` on the mirror's repositories
  (``library/…``, ``docker/…``);
* nothing else: no other namespace's repository, no catalog, no ``delete``, no write to the
  mirror.

Refused actions are left out of the token (as distribution's token specification says);
the registry then answers the request with 401.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipway.registryauth.credentials import Identity

TENANT_ACTIONS = ("pull", "push")
MIRROR_PREFIXES = ("library/", "docker/")
"""Where the docker.io mirror keeps Docker Hub's repositories (``busybox`` is
``library/busybox``): read-only for everyone."""
_NAME = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
MAX_SCOPES = 16


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, object]:
        """The token's ``access`` entry for this scope."""
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True)
class Policy:
    prefix: str = ""
    """The path under which each namespace has its folder: ``""`` when images are
    ``<host>/<namespace>/…``, ``ci/`` for ``<host>/ci/<namespace>/…``."""
    mirror_prefixes: tuple[str, ...] = MIRROR_PREFIXES

    def __post_init__(self) -> None:
        if self.prefix and not self.prefix.endswith("/"):
            object.__setattr__(self, "prefix", self.prefix + "/")


def parse_scope(text: str) -> Scope | None:
    """``repository:team/app:pull,push`` → a Scope; None for what is not one.

    The type may carry a class (``repository(plugin)``); the name never has a ``:``
    (repository names have none), so the last ``:`` starts the actions.
    """
    head, sep, actions = text.rpartition(":")
    kind, sep2, name = head.partition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    kind = kind.split("(", 1)[0]
    wanted = tuple(dict.fromkeys(a for a in actions.split(",") if a))
    if not wanted:
        return None
    return Scope(kind, name, wanted)


def _owns(policy: Policy, identity: Identity, name: str) -> bool:
    ns = identity.namespace
    return ns is not None and name.startswith(f"{policy.prefix}{ns}/")


def grant(policy: Policy, identity: Identity, scope: Scope) -> Scope | None:
    """The part of ``scope`` ``identity`` gets (None: nothing)."""
    if identity.admin:
        return scope
    if scope.type != "repository" or not _NAME.fullmatch(scope.name):
        return None
    allowed: set[str] = set()
    if _owns(policy, identity, scope.name):
        allowed.update(TENANT_ACTIONS)
    if scope.name.startswith(policy.mirror_prefixes):
        allowed.add("pull")
    actions = tuple(a for a in scope.actions if a in allowed)
    return Scope(scope.type, scope.name, actions) if actions else None


def grant_all(policy: Policy, identity: Identity, scopes: list[str]) -> list[Scope]:
    """Every granted part of the requested scopes (at most MAX_SCOPES are read)."""
    granted = []
    for text in scopes[:MAX_SCOPES]:
        scope = parse_scope(text)
        if scope is None:
            continue
        allowed = grant(policy, identity, scope)
        if allowed is not None:
            granted.append(allowed)
    return granted
