"""The examples hold together offline: valid, and the Codeship files equal the walkthrough."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shipway.codeship.convert import Options, convert_directory
from shipway.spec.document import compile_doc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


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
