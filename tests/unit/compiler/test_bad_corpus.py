"""The malformed Pipelines in tests/bad_pipelines are all refused offline too.

Each file says where the cluster refuses it (``# expect: admission …`` at kubectl apply, or
``# expect: operator <field>``: accepted, then marked Failed naming the field). Offline, the
same models refuse every one of them; the operator's message must name the expected field.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shipway.compiler.document import compile_doc
from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.limits import read_deep

CORPUS = Path(__file__).resolve().parents[2] / "bad_pipelines"
FILES = sorted(CORPUS.glob("*.yaml"))


def expectation(path: Path) -> tuple[str, str]:
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if line.startswith("# expect: "):
            where, _, text = line.removeprefix("# expect: ").partition(" ")
            return where, text
    raise AssertionError(f"{path.name} has no '# expect:' line")


def test_the_corpus_is_large_and_covers_both_layers() -> None:
    where = [expectation(p)[0] for p in FILES]
    assert len(FILES) >= 30
    assert where.count("admission") >= 15
    assert where.count("operator") >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_bad_pipeline_is_refused_offline(path: Path) -> None:
    where, text = expectation(path)
    # Decoded the way kubectl does: bytes that are not UTF-8 become U+FFFD.
    source = path.read_bytes().decode("utf-8", errors="replace")
    doc = read_deep(lambda: yaml.safe_load(source))
    with pytest.raises(InvalidSpecError) as info:
        compile_doc(doc)
    if where == "operator":
        assert any(text in str(e) for e in info.value.errors), info.value.errors
