"""Warm workspaces: which spares exist, which a push takes, and the upkeep (triggers/warm.py,
triggers/spares.py against a fake API that refuses a stale write as the API server does)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from shipway.models.repository import RepositorySpec
from shipway.triggers import warm
from shipway.triggers.spares import Spares

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
REPO: dict[str, Any] = {
    "apiVersion": "shipway.dev/v1alpha1",
    "kind": "Repository",
    "metadata": {"name": "app", "namespace": "ci", "uid": "repo-uid"},
    "spec": {"url": "https://git.example/acme/app.git", "provider": "gitea",
             "webhookSecret": {"name": "hook", "key": "secret"}},
}  # fmt: skip
SHAPE = warm.Shape()


def _claim(
    name: str,
    *,
    created: str,
    owner: str = "repo-uid",
    shape: warm.Shape = SHAPE,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spare = warm.spare_manifest(REPO, shape)
    meta = spare["metadata"]
    meta.pop("generateName")
    meta.update(name=name, namespace="ci", creationTimestamp=created, resourceVersion="1")
    meta["ownerReferences"][0]["uid"] = owner
    meta["annotations"].update(annotations or {})
    return spare


def _pipeline(name: str = "app-abc", **workspace: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"services": {}, "steps": []}
    if workspace:
        spec["workspace"] = workspace
    return {"metadata": {"name": name, "namespace": "ci"}, "spec": spec}


def test_a_spare_is_the_repositorys_own_claim_of_the_pipelines_shape() -> None:
    spare = warm.spare_manifest(REPO, SHAPE)
    assert spare["metadata"]["generateName"] == "app-warm-"
    assert spare["metadata"]["labels"] == {warm.LABEL_WARM: "app"}
    (owner,) = spare["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": "shipway.dev/v1alpha1", "kind": "Repository",
                     "name": "app", "uid": "repo-uid", "controller": True}  # fmt: skip
    assert spare["spec"] == {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Gi"}}}  # fmt: skip
    # The shape a converted pipeline has when it says nothing of its workspace.
    assert warm.workspace_shape(_pipeline()) == SHAPE
    assert warm.workspace_shape(_pipeline(size="5Gi")) == warm.Shape(size="5Gi")
    assert warm.workspace_shape(_pipeline(claimName="mine")) is None
    assert warm.workspace_shape(_pipeline(keep=True)) is None


def test_the_oldest_free_spare_of_the_shape_is_taken_first() -> None:
    claims = [
        _claim("c", created="2026-12-07T08:03:00Z"),
        _claim("a", created="2026-12-07T08:01:00Z"),
        _claim("other-repo", created="2026-12-07T08:00:00Z", owner="another-uid"),
        _claim("taken", created="2026-12-07T08:00:00Z", annotations={warm.ANNOTATION_TAKEN: "p"}),
        _claim("big", created="2026-12-07T08:00:00Z", shape=warm.Shape(size="9Gi")),
        _claim("b", created="2026-12-07T08:02:00Z"),
    ]
    claims[-1]["metadata"]["deletionTimestamp"] = "2026-12-07T08:59:00Z"
    assert warm.spares(claims, "repo-uid", SHAPE) == ["a", "c"]
    assert warm.spares(claims, "repo-uid", warm.Shape(size="9Gi")) == ["big"]


def test_upkeep_creates_the_missing_and_deletes_the_newest_extra() -> None:
    def claims(n: int) -> list[dict[str, Any]]:
        return [_claim(f"s{i}", created=f"2026-12-07T08:0{i}:00Z") for i in range(n)]

    def keep(have: int, wanted: int, unseen: int = 0) -> warm.Upkeep:
        return warm.keep(
            claims(have), "repo-uid", wanted, SHAPE, now=NOW, pipeline_exists=lambda _: True,
            unseen=unseen,
        )  # fmt: skip

    assert keep(0, 2) == warm.Upkeep(create=2)
    assert keep(1, 2) == warm.Upkeep(create=1)
    assert keep(2, 2) == warm.Upkeep()
    assert keep(4, 2) == warm.Upkeep(delete=["s2", "s3"])
    assert keep(3, 0) == warm.Upkeep(delete=["s0", "s1", "s2"])
    assert keep(1, 2, unseen=1) == warm.Upkeep()  # just created: not again
    odd = _claim("odd", created="2026-12-07T08:00:00Z", shape=warm.Shape(size="2Gi"))
    assert warm.keep(
        [odd], "repo-uid", 1, SHAPE, now=NOW, pipeline_exists=lambda _: True
    ) == warm.Upkeep(create=1, delete=["odd"])


def test_an_interrupted_take_is_handed_over_or_deleted_after_the_grace() -> None:
    def taken(name: str, pipeline: str, ago: timedelta) -> dict[str, Any]:
        at = (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")
        taken = {warm.ANNOTATION_TAKEN: pipeline, warm.ANNOTATION_TAKEN_AT: at}
        return _claim(name, created="2026-12-07T08:00:00Z", annotations=taken)

    claims = [
        taken("fresh", "p-new", timedelta(seconds=5)),
        taken("made", "p-made", timedelta(minutes=2)),
        taken("lost", "p-never", timedelta(minutes=2)),
    ]
    todo = warm.keep(
        claims, "repo-uid", 1, SHAPE, now=NOW, pipeline_exists=lambda name: name == "p-made"
    )
    assert todo.hand_over == [("made", "p-made")]
    assert todo.delete == ["lost"]
    assert todo.create == 1  # a take, even a fresh one, is no spare any more


class FakeApi:
    """The calls :class:`Spares` makes, with the API server's optimistic concurrency."""

    def __init__(self) -> None:
        self.claims: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.repositories: dict[str, Any] = {}
        self._rv = itertools.count(100)
        self._names = itertools.count()
        self.calls: list[str] = []

    def warm_claims_of(self, namespace: str) -> list[dict[str, Any]]:
        return [c for c in self.claims.values() if warm.LABEL_WARM in c["metadata"]["labels"]]

    def pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pipelines.get(name)

    def create_claim(self, namespace: str, manifest: dict[str, Any]) -> str:
        name = f"{manifest['metadata']['generateName']}{next(self._names)}"
        meta = {**manifest["metadata"], "name": name, "resourceVersion": str(next(self._rv)),
                "creationTimestamp": f"2026-12-07T08:{len(self.claims):02d}:00Z"}  # fmt: skip
        self.claims[name] = {**manifest, "metadata": meta}
        self.calls.append(f"create {name}")
        return name

    def patch_claim(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        claim = self.claims.get(name)
        if claim is None:
            raise ApiException(status=404)
        meta, change = claim["metadata"], patch["metadata"]
        if change.get("resourceVersion") not in (None, meta["resourceVersion"]):
            raise ApiException(status=409)
        for key in ("annotations", "labels"):
            for k, v in (change.get(key) or {}).items():
                if v is None:
                    meta[key].pop(k, None)
                else:
                    meta[key][k] = v
        if "ownerReferences" in change:
            meta["ownerReferences"] = change["ownerReferences"]
        meta["resourceVersion"] = str(next(self._rv))
        self.calls.append(f"patch {name}")
        return claim

    def delete_claim(self, namespace: str, name: str, resource_version: str | None) -> None:
        self.claims.pop(name, None)
        self.calls.append(f"delete {name}")


def _spares(api: FakeApi) -> Spares:
    return Spares(api, ["ci"], clock=lambda: NOW)  # type: ignore[arg-type]


def test_a_push_takes_a_spare_hands_it_to_its_pipeline_and_a_new_one_is_made() -> None:
    api = FakeApi()
    spares = _spares(api)
    spares.keep(REPO)
    (first,) = api.claims
    spec = RepositorySpec.model_validate(REPO["spec"])
    manifest = _pipeline()
    assert spares.take(REPO, spec, manifest) == first
    assert manifest["spec"]["workspace"] == {"claimName": first}
    assert api.claims[first]["metadata"]["annotations"][warm.ANNOTATION_TAKEN] == "app-abc"
    # Taken, it is no spare: the next push finds none, the upkeep makes one.
    assert spares.take(REPO, spec, _pipeline("app-def")) is None
    assert spares.keep(REPO).create == 1
    made = {"metadata": {"name": "app-abc", "uid": "pipe-uid"}}
    spares.hand_over("ci", first, made)
    meta = api.claims[first]["metadata"]
    assert meta["ownerReferences"] == [{"apiVersion": "shipway.dev/v1alpha1", "kind": "Pipeline",
                                        "name": "app-abc", "uid": "pipe-uid", "controller": True}]  # fmt: skip
    assert warm.LABEL_WARM not in meta["labels"]


def test_of_two_takers_of_one_spare_the_second_takes_the_next_or_none() -> None:
    api = FakeApi()
    spares = _spares(api)
    spares.keep(REPO)
    (only,) = api.claims
    stale = {k: {**v, "metadata": dict(v["metadata"])} for k, v in api.claims.items()}
    spec = RepositorySpec.model_validate(REPO["spec"])
    assert spares.take(REPO, spec, _pipeline("p1")) == only
    # The second read the spare before the first's take: its write is refused (409).
    api.warm_claims_of = lambda namespace: list(stale.values())  # type: ignore[method-assign]
    second = _pipeline("p2")
    assert spares.take(REPO, spec, second) is None
    assert "workspace" not in second["spec"]  # it makes its own claim
    assert api.claims[only]["metadata"]["annotations"][warm.ANNOTATION_TAKEN] == "p1"


def test_a_released_spare_is_free_again_and_none_is_taken_when_turned_off() -> None:
    api = FakeApi()
    spares = _spares(api)
    spares.keep(REPO)
    (only,) = api.claims
    spec = RepositorySpec.model_validate(REPO["spec"])
    assert spares.take(REPO, spec, _pipeline("p1")) == only
    spares.release("ci", only)
    assert spares.take(REPO, spec, _pipeline("p2")) == only
    off = RepositorySpec.model_validate({**REPO["spec"], "warmWorkspaces": 0})
    spares.release("ci", only)
    assert spares.take(REPO, off, _pipeline("p3")) is None
    # Turned off (or the Repository deleted): the upkeep deletes the spares.
    assert spares.keep({**REPO, "spec": {**REPO["spec"], "warmWorkspaces": 0}}).delete == [only]
    assert api.claims == {}


@pytest.mark.parametrize("wanted", [-1, 11])
def test_the_number_of_warm_workspaces_is_bounded(wanted: int) -> None:
    with pytest.raises(ValueError, match="warmWorkspaces"):
        RepositorySpec.model_validate({**REPO["spec"], "warmWorkspaces": wanted})


def test_a_claim_is_patched_with_a_json_merge_patch() -> None:
    """A merge patch replaces the ownerReferences; the client's default for a dict (a
    strategic merge) would keep the Repository's beside the Pipeline's: two controllers."""
    from kubernetes import client

    from shipway.triggers.kube import TriggersApi

    sent: list[dict[str, Any]] = []

    class Core:
        def patch_namespaced_persistent_volume_claim(self, *args: Any, **kwargs: Any) -> Any:
            sent.append({"args": args, **kwargs})
            return {"metadata": {"name": args[0]}}

    api = TriggersApi(client.ApiClient())
    api.core = Core()
    patch = warm.handover_patch({"metadata": {"name": "p", "uid": "u"}})
    api.patch_claim("ci", "app-warm-x", patch)
    (call,) = sent
    assert call["args"] == ("app-warm-x", "ci", patch)
    assert call["_content_type"] == "application/merge-patch+json"
