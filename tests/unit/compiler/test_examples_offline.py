"""The examples hold together offline: valid, and the Codeship files equal the walkthrough."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shipway.codeship.convert import Options, convert_directory
from shipway.compiler.document import compile_doc

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_pipeline_is_valid(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "Pipeline"]
    assert docs
    for doc in docs:
        compile_doc(doc)


def test_the_codeship_files_convert_to_the_walkthrough_pipeline() -> None:
    converted = convert_directory(
        EXAMPLES / "codeship-walkthrough", options=Options(name="volumes-demo")
    )
    walkthrough = yaml.safe_load((EXAMPLES / "walkthrough-volumes.yaml").read_text())
    assert converted.warnings == ()
    assert converted.manifest["spec"] == walkthrough["spec"]
    assert converted.manifest["metadata"]["name"] == walkthrough["metadata"]["name"]


def test_the_seed_walkthrough_converts_with_both_builds_as_written() -> None:
    """examples/seed-walkthrough: the walkthrough's services verbatim (dockerfile_path and all)."""
    seed = EXAMPLES / "seed-walkthrough"
    converted = convert_directory(seed, options=Options(name="seed", source={"upload": {}}))
    assert [(w.where, w.kind.value) for w in converted.warnings] == [
        ("demo.build.dockerfile_path", "deprecated"),
        ("volumes_test.build.dockerfile_path", "deprecated"),
    ]
    services = converted.manifest["spec"]["services"]
    assert services["demo"]["build"] == {"image": "myapp", "dockerfile": "Dockerfile"}
    assert services["demo"]["links"] == ["redis", "postgres"]
    assert services["demo"]["volumes"] == ["./tmp:/app"]
    assert services["volumes_test"]["build"] == {
        "image": "volumestest",
        "dockerfile": "Dockerfile2",
    }
    assert services["volumes_test"]["volumes_from"] == ["demo"]
    for name in ("Dockerfile", "Dockerfile2", "artifact.sh", "spec/artifact_spec.rb"):
        assert (seed / name).is_file(), name
