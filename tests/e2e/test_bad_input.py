"""Without the admission webhook, every malformed Pipeline is refused at kubectl apply by the
CRD's schema, CEL rules and policy, or marked Failed by the operator naming the field; no pod
is created for any of them, and a valid pipeline applied alongside still succeeds.

This is the operator's own validation (defence in depth: Pipelines created while the webhook
was absent); test_admission.py applies the same files with the webhook.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.compiler.test_bad_corpus import FILES, expectation

from .pipelines import Kubectl, example

pytestmark = pytest.mark.e2e


@pytest.fixture
def without_webhook(shipway_operator: Any) -> Iterator[None]:
    """The session operator's webhook configuration removed for the test, then put back."""
    if shipway_operator is None:
        yield
        return
    with shipway_operator.webhook_removed():
        yield


def test_bad_pipelines_are_refused_and_the_good_one_still_runs(
    cluster: object, namespace: str, shipway_operator: object, without_webhook: None
) -> None:
    k = Kubectl(namespace)
    k.apply_docs(example("walkthrough-volumes.yaml"))
    refused: dict[str, str] = {}
    accepted: dict[str, str] = {}
    for path in FILES:
        where, text = expectation(path)
        result = k.run("apply", "-f", str(path), check=False)
        if where == "admission":
            assert result.returncode != 0, f"{path.name} was accepted by the API server"
            assert text in result.stderr, f"{path.name}: {result.stderr}"
            refused[path.name] = result.stderr.strip().splitlines()[-1]
        else:
            assert result.returncode == 0, f"{path.name}: {result.stderr}"
            name = result.stdout.split()[0].split("/")[-1]
            accepted[name] = text
    for name, text in accepted.items():
        body = k.wait_for(name, timeout=60)
        status = body["status"]
        assert status["phase"] == "Failed", (name, status)
        assert text in status["message"], (name, status["message"])
        assert status["conditions"][0]["reason"] == "InvalidSpec"
    good = k.wait_for("volumes-demo")
    assert good["status"]["phase"] == "Succeeded"
    pods = k("get", "pods", "-o", "name").split()
    assert all("volumes-demo" in p for p in pods), pods
    assert len(refused) + len(accepted) == len(FILES)


def test_the_spec_is_immutable_and_cancel_cannot_be_undone(
    cluster: object, namespace: str, shipway_operator: object
) -> None:
    k = Kubectl(namespace)
    (doc,) = example("branch-filters.yaml")
    k.apply_docs([doc])
    changed = k.run(
        "patch", "pipeline", "branch-filters", "--type=merge",
        "-p", '{"spec":{"steps":[{"service":"app","command":"echo other"}]}}',
        check=False,
    )  # fmt: skip
    assert changed.returncode != 0
    assert "spec is immutable once created, except cancel" in changed.stderr
    k("patch", "pipeline", "branch-filters", "--type=merge", "-p", '{"spec":{"cancel":true}}')
    undo = k.run(
        "patch", "pipeline", "branch-filters", "--type=merge", "-p", '{"spec":{"cancel":false}}',
        check=False,
    )  # fmt: skip
    assert undo.returncode != 0
    assert "cannot be resumed" in undo.stderr
