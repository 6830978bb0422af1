"""The CRD is generated from the models, structural, and in sync with the committed files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shipway.compiler.crd import CRD_FILES, POLICY_FILES, build_crd, main, render, render_policy

ROOT = Path(__file__).resolve().parents[3]


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, child in (schema.get("properties") or {}).items():
        yield from _nodes(child, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_the_schema_is_structural() -> None:
    for path, node in _nodes(_schema()):
        assert "$ref" not in node, path
        typed = (
            "type" in node
            or node.get("x-kubernetes-preserve-unknown-fields")
            or node.get("x-kubernetes-int-or-string")
        )
        assert typed, f"{path} has no type"
        for option in node.get("anyOf", []):
            assert set(option) <= {"type"}, path
            assert node.get("x-kubernetes-int-or-string"), path


def test_every_spec_field_is_described_for_kubectl_explain() -> None:
    spec = _schema()["properties"]["spec"]
    for name in ("services", "steps", "workspace", "ci", "timeout", "cancel", "serviceAccountName"):
        assert spec["properties"][name].get("description"), name
    service = spec["properties"]["services"]["additionalProperties"]
    for name in ("image", "volumes", "volumes_from", "links", "environment", "envFrom"):
        assert service["properties"][name].get("description"), name


def test_steps_nest_to_a_fixed_depth_then_are_kept_for_the_operator() -> None:
    node = _schema()["properties"]["spec"]["properties"]["steps"]["items"]
    depth = 1
    while "properties" in node:
        node = node["properties"]["steps"]["items"]
        depth += 1
    assert node["x-kubernetes-preserve-unknown-fields"] is True
    assert depth >= 4


def test_printer_columns_and_short_name() -> None:
    crd = build_crd()
    assert crd["spec"]["names"]["shortNames"] == ["pl"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:4] == ["Phase", "Progress", "Step", "Age"]


def test_committed_crds_match_the_models(tmp_path: Path) -> None:
    for target in CRD_FILES:
        assert (ROOT / target).read_text() == render(), f"{target} is stale: run make crd"
    for target in POLICY_FILES:
        assert (ROOT / target).read_text() == render_policy(), f"{target} is stale: run make crd"
    assert main(["--check", "--root", str(ROOT)]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 1
