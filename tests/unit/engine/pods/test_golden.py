"""The four pod kinds rendered byte for byte against reviewed golden files.

Gafaelfawr's pattern: ``data/kubernetes/input/<kind>.json`` holds a Pipeline spec and the plan's
intent, ``output/<kind>.json`` the Pod the operator creates for it. A change to any field of any
pod shows up here as a diff to review; ``UPDATE_GOLDEN=1`` rewrites the outputs after review.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from shipway.engine.intents import (
    BuildToCreate,
    PodToCreate,
    PushTarget,
    PushToCreate,
    SourceToCreate,
    StepToCreate,
)
from shipway.engine.pods.manifests import build_manifest, pod_manifest
from shipway.engine.settings import (
    BuildConfig,
    DockerConfig,
    PodOptions,
    PushConfig,
    SourceSettings,
)
from shipway.models import Healthcheck
from tests.unit.builders import REF, compiled

DATA = Path(__file__).parent.parent / "data" / "kubernetes"
KINDS = ("step", "source", "build", "push")

OPTIONS = PodOptions(
    security_context={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    default_service_account="ci",
    tolerations=({"key": "ci", "operator": "Exists", "effect": "NoSchedule"},),
    node_selector={"pool": "ci"},
    push=PushConfig(image="crane:debug", ca_config_map="kube-root-ca.crt"),
    source=SourceSettings(image="git:test", max_size=2**30),
    docker=DockerConfig(enabled=True, image="docker:dind-test"),
    seal_key=b"golden-seal-key",
)
BUILD = BuildConfig(
    registry="registry.local",
    builder="tcp://buildkitd:1234",
    client_secret="client",
    namespace="shipway-system",
)


def render(kind: str, case: dict[str, Any]) -> dict[str, Any]:
    """The Pod of one input case, through the operator's own entry points."""
    pipeline = compiled(case["spec"])
    create = dict(case["create"])
    if kind == "build":
        create["cache_tags"] = tuple(create.get("cache_tags", ()))
        create["args"] = tuple(tuple(a) for a in create.get("args", ()))
        build = BuildToCreate(**create)
        return build_manifest(REF, pipeline, build, BUILD, node=case["node"], options=OPTIONS)
    intent: PodToCreate
    if kind == "source":
        intent = SourceToCreate(**create)
    elif kind == "push":
        create["push"] = PushTarget(**create["push"])
        create["images"] = tuple(tuple(i) for i in create.get("images", ()))
        intent = PushToCreate(**create)
    else:
        create["images"] = tuple(tuple(i) for i in create.get("images", ()))
        create["healthchecks"] = tuple(
            (name, Healthcheck.model_validate(check))
            for name, check in create.get("healthchecks", ())
        )
        intent = StepToCreate(**create)
    return pod_manifest(REF, pipeline, intent, node=case["node"], options=OPTIONS)


def dump(manifest: dict[str, Any]) -> str:
    """Key order kept (not sorted): the order the operator writes is part of the golden."""
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("kind", KINDS)
def test_pod_matches_its_golden_file(kind: str) -> None:
    case = json.loads((DATA / "input" / f"{kind}.json").read_text())
    rendered = dump(render(kind, case))
    golden = DATA / "output" / f"{kind}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(rendered)
    assert golden.exists(), f"no golden file {golden}: run with UPDATE_GOLDEN=1 and review it"
    assert rendered == golden.read_text()
