"""Authorization by the API server: SubjectAccessReview for every view and action.

A namespace's runs show only to a user who may ``list pipelines`` there; cancel needs
``patch pipelines``, rerun ``create pipelines``, approve and reject ``patch`` (the admission
policy checks the rest: who may approve). The answers are cached for a few seconds per user,
so a page of 50 runs costs at most one review per namespace on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shipway import GROUP, PLURAL
from shipway.dashboard.identity import User
from shipway.dashboard.kube import Kube

TTL_SECONDS = 10.0


@dataclass(frozen=True)
class Check:
    verb: str
    namespace: str
    """"" for every namespace (a cluster-wide list)."""
    resource: str = PLURAL
    subresource: str = ""
    group: str = GROUP


def review_body(user: User, check: Check) -> dict[str, object]:
    """The SubjectAccessReview (or, for the user themself, SelfSubjectAccessReview)."""
    attributes: dict[str, str] = {"verb": check.verb, "resource": check.resource}
    if check.group:
        attributes["group"] = check.group
    if check.namespace:
        attributes["namespace"] = check.namespace
    if check.subresource:
        attributes["subresource"] = check.subresource
    if user.self_review:
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"resourceAttributes": attributes, "user": user.name, "groups": list(user.groups)},
    }


def visible(namespaces: Iterable[str], allowed: Iterable[bool]) -> list[str]:
    """The namespaces whose review said yes, in order."""
    return [ns for ns, ok in zip(namespaces, allowed, strict=True) if ok]


class Authorizer:
    """Asks the API server; ``reviewer`` makes SubjectAccessReviews (the dashboard's own
    service account in the cluster), a self review goes with the user's credentials."""

    def __init__(self, reviewer: Kube | None, kube_for: Callable[[User], Kube]) -> None:
        self.reviewer = reviewer
        self.kube_for = kube_for
        self._cache: dict[tuple[str, tuple[str, ...], Check], tuple[float, bool]] = {}

    async def allowed(self, user: User, check: Check) -> bool:
        key = (user.name, user.groups, check)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < TTL_SECONDS:
            return hit[1]
        body = review_body(user, check)
        kube = self.kube_for(user) if user.self_review else self.reviewer
        assert kube is not None, "SubjectAccessReview needs the dashboard's own credentials"
        path = "/apis/authorization.k8s.io/v1/" + (
            "selfsubjectaccessreviews" if user.self_review else "subjectaccessreviews"
        )
        review = await kube.request("POST", path, body)
        ok = bool((review.get("status") or {}).get("allowed"))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, ok)
        return ok

    async def namespaces(self, user: User, candidates: list[str]) -> list[str] | None:
        """Where the user may list pipelines: None for everywhere (a cluster-wide right)."""
        if await self.allowed(user, Check("list", "")):
            return None
        answers = await asyncio.gather(
            *(self.allowed(user, Check("list", ns)) for ns in candidates)
        )
        return visible(candidates, answers)
