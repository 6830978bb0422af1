"""The admission webhook on the real cluster: every bad Pipeline refused at kubectl apply.

The session's operator (conftest) serves the webhook from this machine through its own
configuration, scoped to the session's namespaces. Every file of tests/bad_pipelines that
``shipway validate`` rejects is refused by ``kubectl apply``: by the CRD's schema, rules and
policy with their own message, or by the webhook with exactly the lines validate prints; a
valid Pipeline (and one whose tag would make a backtracking regex engine hang) is admitted
and runs. While the webhook is down, new Pipelines are refused loudly (failurePolicy Fail) and
nothing is lost. The in-cluster webhook of the Helm chart is tested in test_helm.py.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shipway.cli import main
from tests.unit.compiler.test_bad_corpus import FILES, expectation

from .conftest import SESSION_PREFIX
from .pipelines import Kubectl, example

pytestmark = pytest.mark.e2e
OUTAGE = "failed calling webhook"


@pytest.fixture
def webhook(shipway_operator: Any) -> Any:
    if getattr(shipway_operator, "webhook", None) is None:
        pytest.skip("the session's operator serves no webhook (not the local cluster)")
    return shipway_operator


def validate_lines(path: Path) -> list[str]:
    """What ``shipway validate FILE`` prints, without the file name."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["validate", str(path)])
    return [line.removeprefix(f"{path}: ") for line in out.getvalue().splitlines()]


def test_every_pipeline_validate_rejects_is_refused_at_apply(namespace: str, webhook: Any) -> None:
    assert refused_like_validate(Kubectl(namespace)) >= 20


def refused_like_validate(k: Kubectl) -> int:
    """Applies every file of tests/bad_pipelines in k's namespace: each is refused, by the
    schema, CEL or policy in the API server's words or by the webhook with validate's lines;
    nothing is stored. Returns how many compiler-layer files the webhook refused."""
    by_webhook = 0
    for path in FILES:
        printed = validate_lines(path)
        assert printed[0].endswith("is invalid:"), (path.name, printed)
        started = time.monotonic()
        result = k.run("apply", "-f", str(path), check=False)
        took = time.monotonic() - started
        assert result.returncode != 0, f"{path.name} was admitted"
        where, text = expectation(path)
        if where == "admission" and text in result.stderr:
            pass  # the schema, a CEL rule or the policy, in the API server's words
        else:  # the webhook (also for an admission-layer file when the cluster's CRD is older)
            assert 'admission webhook "validate.pipelines.shipway.dev" denied' in result.stderr
            for line in printed:
                assert line in result.stderr, (path.name, line, result.stderr)
            by_webhook += where == "operator"
        print(f"{path.name}: refused in {took * 1000:.0f} ms")
    assert k.json("get", "pipelines")["items"] == []
    return by_webhook


def test_valid_pipelines_are_admitted_and_run(namespace: str, webhook: Any) -> None:
    k = Kubectl(namespace)
    k.apply_docs(example("walkthrough-volumes.yaml"))
    redos = {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "redos-tag"},
        "spec": {
            "ci": {"branch": "a" * 35 + "!"},
            "services": {"app": {"image": "busybox:1.36"}},
            "steps": [
                {"name": "never", "service": "app", "command": "false", "tag": "^(a+)+$"},
                {"name": "always", "service": "app", "command": "true"},
            ],
        },
    }
    k.apply_docs([redos])
    assert k.wait_for("volumes-demo")["status"]["phase"] == "Succeeded"
    body = k.wait_for("redos-tag")
    assert body["status"]["phase"] == "Succeeded"
    phases = {s["name"]: s["phase"] for s in body["status"]["steps"]}
    assert phases == {"never": "Skipped", "always": "Succeeded"}


def test_the_webhook_reviews_only_the_operators_namespaces(cluster: Any, webhook: Any) -> None:
    """Another installation's namespace (here: one no operator watches) is not reviewed."""
    outside = f"{SESSION_PREFIX.rstrip('-')}x-outside-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", outside)
    try:
        bad = _file("33-")
        result = Kubectl(outside).run("apply", "-f", str(bad), check=False)
        assert result.returncode == 0, result.stderr
    finally:
        cluster.run("delete", "namespace", outside, "--wait=false", check=False)


def _pipeline(name: str, command: str = "true") -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "services": {"app": {"image": "busybox:1.36"}},
            "steps": [{"name": "s", "service": "app", "command": command}],
        },
    }


def test_while_the_webhook_is_down_creates_fail_loudly_and_nothing_is_lost(
    namespace: str, webhook: Any
) -> None:
    """failurePolicy Fail: an apply during the outage fails naming the webhook and stores
    nothing; every apply that succeeded, before, during or after, runs to the end."""
    k = Kubectl(namespace)
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    stop = threading.Event()

    def apply_continuously() -> None:
        n = 0
        while not stop.is_set():
            name = f"flow-{n:03d}"
            results[name] = k.run("apply", "-f", "-", stdin=_json(_pipeline(name)), check=False)
            n += 1
            time.sleep(0.2)

    applier = threading.Thread(target=apply_continuously)
    applier.start()
    try:
        time.sleep(2)
        webhook.kill()
        down = k.run("apply", "-f", "-", stdin=_json(_pipeline("while-down")), check=False)
        bad = k.run("apply", "-f", str(_file("33-")), check=False)  # a webhook-layer fault
        time.sleep(2)
        webhook.start()  # waits until the webhook listens again
        time.sleep(2)
    finally:
        stop.set()
        applier.join()
    for during in (down, bad):
        assert during.returncode != 0
        assert OUTAGE in during.stderr, during.stderr
    stored = {p["metadata"]["name"] for p in k.json("get", "pipelines")["items"]}
    assert "while-down" not in stored
    admitted = {name for name, r in results.items() if r.returncode == 0}
    refused = {name: r.stderr for name, r in results.items() if r.returncode != 0}
    assert admitted == stored, (admitted, stored)
    assert all(OUTAGE in err for err in refused.values()), refused
    assert refused, "no apply fell into the outage"
    for name in admitted:
        assert k.wait_for(name, timeout=180)["status"]["phase"] == "Succeeded", name
    # The client retries: the same Pipeline is admitted once the webhook is back.
    k.apply_docs([_pipeline("while-down")])
    assert k.wait_for("while-down")["status"]["phase"] == "Succeeded"
    print(f"\napplies: {len(admitted)} admitted, {len(refused)} refused during the outage")


def _file(prefix: str) -> Path:
    return next(p for p in FILES if p.name.startswith(prefix))


def _json(doc: dict[str, Any]) -> str:
    import json

    return json.dumps(doc)
