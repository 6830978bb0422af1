"""Waiting for CRDs: a CRD whose conditions are not written yet is waited for, not an error."""

from __future__ import annotations

import pytest

from localkube.crds import ESTABLISHED, wait_established
from localkube.errors import LocalkubeError


class FakeKubectl:
    """Answers `kubectl get crd NAME -o jsonpath=...` from a script of outputs per CRD."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []
        self.now = 0.0

    def get(self, *args: str) -> str:
        self.calls.append(args)
        assert args[:2] == ("get", "crd")
        assert args[3:] == ("-o", ESTABLISHED)
        script = self.answers[args[2]]
        return script.pop(0) if len(script) > 1 else script[0]

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_crd_without_conditions_yet_is_waited_for_until_established() -> None:
    # "" is what a fresh CRD (status.conditions null) or a failed kubectl gives
    kube = FakeKubectl({"pipelines.shipway.dev": ["", "", "False", "True"]})
    wait_established(kube.get, ["pipelines.shipway.dev"], clock=lambda: kube.now, sleep=kube.sleep)
    assert len(kube.calls) == 4


def test_each_crd_is_asked_until_it_alone_is_established() -> None:
    kube = FakeKubectl({"a.x.dev": ["True"], "b.x.dev": ["", "True\n"]})
    wait_established(kube.get, ["a.x.dev", "b.x.dev"], clock=lambda: kube.now, sleep=kube.sleep)
    assert [c[2] for c in kube.calls] == ["a.x.dev", "b.x.dev", "b.x.dev"]


def test_a_crd_never_established_fails_naming_it_after_the_timeout() -> None:
    kube = FakeKubectl({"a.x.dev": ["True"], "b.x.dev": [""]})
    with pytest.raises(LocalkubeError, match=r"b\.x\.dev not Established after 5s") as failed:
        wait_established(
            kube.get, ["a.x.dev", "b.x.dev"], timeout=5, clock=lambda: kube.now, sleep=kube.sleep
        )
    assert "a.x.dev" not in str(failed.value)
    assert 4.9 < kube.now < 5.5
