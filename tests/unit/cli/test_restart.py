"""``shipway restart NAME``: the new Pipeline's name, spec, pinned commit and Secrets."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from shipway.cli import common, follow, main
from shipway.cli.cluster import ClusterError
from shipway.cli.format import pipeline_table
from shipway.cli.restart import restart_manifest, restart_names, secret_names
from shipway.cli.statustree import status_tree

from .client_builders import NOW, FakeApi, pipeline, step

GIT_SPEC: dict[str, Any] = {
    "source": {"git": {"url": "https://git.example/app.git", "revision": "main"}},
    "services": {
        "app": {
            "image": "busybox:1.36",
            "envFrom": [{"secretRef": {"name": "app-env-1"}}],
            "build": {"context": ".", "argsFrom": [{"secretRef": {"name": "app-args-1"}}]},
        }
    },
    "steps": [{"service": "app", "command": "make", "dockercfgSecret": "push-cred"}],
    "imagePullSecrets": [{"name": "pull-cred"}],
    "cancel": True,
    "push": True,
}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def old(name: str = "app-x1", spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    item = pipeline("Failed", [], name=name, spec=GIT_SPEC if spec is None else spec)
    item["metadata"].update({"uid": "uid-old", **meta})
    item["status"]["source"] = {
        "kind": "git",
        "phase": "Succeeded",
        "commit": COMMIT,
        "branch": "main",
    }
    return item


def test_names_count_up_from_r2_and_from_a_restarts_own_number() -> None:
    assert list(islice(restart_names(old("app-x1")), 3)) == ["app-x1-r2", "app-x1-r3", "app-x1-r4"]
    restarted = old("app-x1-r2", labels={"shipway.dev/restart-of": "app-x1"})
    assert next(restart_names(restarted)) == "app-x1-r3"
    # a name that merely ends like one is not a restart
    assert next(restart_names(old("build-r2"))) == "build-r2-r2"


def test_names_stay_within_63_characters() -> None:
    name = next(restart_names(old("a" * 63)))
    assert name == "a" * 60 + "-r2"
    chained = old(name, labels={"shipway.dev/restart-of": "a" * 63})
    assert next(restart_names(chained)) == "a" * 60 + "-r3"
    ten = old("a" * 60 + "-r9", labels={"shipway.dev/restart-of": "x"})
    assert next(restart_names(ten)) == "a" * 59 + "-r10"


def test_the_new_spec_checks_out_the_same_commit_and_keeps_its_branch() -> None:
    item = old(labels={"team": "a"}, annotations={"note": "x", **LAST_APPLIED})
    manifest, notes = restart_manifest(item, "app-x1-r2")
    assert manifest["metadata"] == {
        "name": "app-x1-r2",
        "labels": {"team": "a", "shipway.dev/restart-of": "app-x1"},
        "annotations": {"note": "x"},
    }
    spec = manifest["spec"]
    assert spec["source"]["git"] == {"url": "https://git.example/app.git", "revision": COMMIT}
    assert spec["ci"] == {"branch": "main"}  # the build tag and CI_BRANCH stay main
    assert "cancel" not in spec
    assert spec["push"] is True
    assert {k: v for k, v in spec.items() if k not in ("source", "ci")} == {
        k: v for k, v in GIT_SPEC.items() if k not in ("source", "cancel")
    }
    assert notes == ["checking out 0123456789ab (main) again"]
    assert GIT_SPEC["source"]["git"]["revision"] == "main"  # the old spec is untouched


LAST_APPLIED = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}


def test_a_tag_checkout_keeps_its_tag_and_given_ci_fields_win() -> None:
    item = old()
    item["status"]["source"] = {"kind": "git", "phase": "Succeeded", "commit": COMMIT, "tag": "v1"}
    assert restart_manifest(item, "n")[0]["spec"]["ci"] == {"tag": "v1"}
    item["spec"] = {**GIT_SPEC, "ci": {"branch": "release", "commitId": "given"}}
    assert restart_manifest(item, "n")[0]["spec"]["ci"] == {
        "branch": "release",
        "commitId": "given",
    }


def test_a_run_that_checked_out_nothing_is_not_pinned() -> None:
    item = old()
    item["status"]["source"] = {"kind": "git", "phase": "Failed"}
    manifest, notes = restart_manifest(item, "n")
    assert manifest["spec"]["source"] == GIT_SPEC["source"]
    assert notes == ["app-x1 checked out no commit: checking out main as it is now"]


def test_secret_names_finds_every_reference() -> None:
    assert secret_names(GIT_SPEC) == {"app-env-1", "app-args-1", "push-cred", "pull-cred"}
    git = {"source": {"git": {"url": "u", "secretName": "deploy-key"}}, "steps": [{"steps": []}]}
    assert secret_names(git) == {"deploy-key"}


class FakeCore:
    """Secrets with owners; patches add one, as the API server's strategic merge does."""

    def __init__(self, owners: dict[str, list[str]]) -> None:
        self.owners = owners

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> Any:
        if name not in self.owners:
            raise ApiException(status=404, reason="NotFound")
        refs = [{"uid": uid} for uid in self.owners[name]]
        return type("Response", (), {"data": json.dumps({"metadata": {"ownerReferences": refs}})})

    def patch_namespaced_secret(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.owners[name] += [ref["uid"] for ref in body["metadata"]["ownerReferences"]]


class Api(FakeApi):
    """The old Pipeline, names already taken, then the new run."""

    def __init__(self, previous: dict[str, Any], taken: set[str], core: FakeCore) -> None:
        run = [
            pipeline("Running", [step("1", "make", "Running", pod="p-1", started=0)], spec={}),
            pipeline(
                "Succeeded",
                [step("1", "make", "Succeeded", pod="p-1", exit_code=0, started=0, finished=2)],
                finished=2,
                spec={},
            ),
        ]
        super().__init__(run, {"p-1": "made\n"})
        self.previous, self.taken, self.core = previous, taken, core
        self.tried: list[str] = []

    def get(self, name: str) -> dict[str, Any] | None:
        return self.previous if name == self.previous["metadata"]["name"] else None

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        self.tried.append(name)
        if name in self.taken:
            raise ClusterError(409, f'pipelines.shipway.dev "{name}" already exists')
        self.created = json.loads(json.dumps(manifest))
        for state in self.states:
            state["metadata"].update(
                name=name, uid="uid-new", labels=manifest["metadata"]["labels"]
            )
        return self.current


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "RETRY_SECONDS", 0.01)


def test_restart_takes_the_next_free_name_and_shares_the_owned_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    core = FakeCore({"app-env-1": ["uid-old"], "app-args-1": ["uid-old"], "pull-cred": []})
    api = Api(old(), {"app-x1-r2"}, core)
    monkeypatch.setattr(common, "connect_api", lambda args: api)
    assert main(["restart", "app-x1"]) == 0
    assert api.tried == ["app-x1-r2", "app-x1-r3"]
    assert api.created is not None
    assert api.created["spec"]["source"]["git"]["revision"] == COMMIT
    # the old Pipeline's Secrets are the new one's too; the user's stay unowned
    assert core.owners == {
        "app-env-1": ["uid-old", "uid-new"],
        "app-args-1": ["uid-old", "uid-new"],
        "pull-cred": [],
    }
    captured = capsys.readouterr()
    assert "shipway: restart of app-x1: checking out 0123456789ab (main) again" in captured.out
    assert "(step: make) made" in captured.out
    assert "restart of app-x1\n" in captured.out  # the status tree says so too
    assert (
        captured.err
        == "shipway: warning: Secret push-cred, which app-x1 refers to, does not exist\n"
    )


def test_restart_of_an_upload_needs_the_files_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = {**GIT_SPEC, "source": {"upload": {}}}
    api = Api(old(spec=spec), set(), FakeCore({}))
    monkeypatch.setattr(common, "connect_api", lambda args: api)
    assert main(["restart", "app-x1"]) == 2
    assert "give --source DIR" in capsys.readouterr().err
    assert api.tried == []
    assert main(["restart", "nope"]) == 2
    assert "pipeline 'nope' not found" in capsys.readouterr().err
    git = Api(old(), set(), FakeCore({}))
    monkeypatch.setattr(common, "connect_api", lambda args: git)
    assert main(["restart", "app-x1", "--source", str(tmp_path)]) == 2
    assert "drop --source" in capsys.readouterr().err


def test_list_and_status_show_what_a_pipeline_restarts() -> None:
    first = old()
    again = old("app-x1-r2", labels={"shipway.dev/restart-of": "app-x1"})
    assert pipeline_table([first, again], NOW) == [
        "NAME        PHASE    PROGRESS   STEP   AGE   RESTART-OF",
        "app-x1      Failed                     1m",
        "app-x1-r2   Failed                     1m    app-x1",
    ]
    assert pipeline_table([first], NOW)[0] == "NAME     PHASE    PROGRESS   STEP   AGE"
    assert status_tree(again, NOW)[1] == "  restart of app-x1"
