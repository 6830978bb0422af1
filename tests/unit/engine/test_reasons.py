"""Every reason a preparation script or an engine module can write is a member of reasons.py.

The scripts write reasons as words in shell (``fail CheckoutFailed``, ``reason=ScriptFailed``);
the modules compare and assign them. A new word in either place that is not a member fails
here, so the status, the Events, the command line and the docs keep naming one set.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shipway.engine import reasons
from shipway.engine.pods import scripts

ENGINE = Path(reasons.__file__).parent
MEMBERS = {
    member.value
    for enum in (
        reasons.StepReason,
        reasons.PipelineReason,
        reasons.EventReason,
        reasons.SourceReason,
        reasons.PodReason,
    )
    for member in enum
}
SCRIPT_REASON = re.compile(r"\b(?:fail|reason=)\s*((?:[A-Z][a-z]+)+)\b")


def script_reasons() -> set[str]:
    text = "\n".join(v for v in vars(scripts).values() if isinstance(v, str))
    return set(SCRIPT_REASON.findall(text))


def _is_reason(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
    return isinstance(name, str) and name.endswith("reason")


def _strings(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return list(node.elts)
    if isinstance(node, ast.BoolOp):
        return [e for v in node.values for e in _strings(v)]
    return [node]


def module_reasons(path: Path) -> list[ast.expr]:
    """The expressions a module writes as a reason or compares a reason with."""
    found: list[ast.expr] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.keyword) and node.arg and node.arg.endswith("reason")) or (
            isinstance(node, ast.Assign) and any(_is_reason(t) for t in node.targets)
        ):
            found += _strings(node.value)
        elif isinstance(node, ast.Compare) and _is_reason(node.left):
            found += [e for c in node.comparators for e in _strings(c)]
    return found


def test_the_scripts_write_only_members() -> None:
    written = script_reasons()
    assert {"CheckoutFailed", "RevisionNotFound", "ScriptFailed"} <= written
    assert written - MEMBERS == set()


@pytest.mark.parametrize("path", sorted(ENGINE.rglob("*.py")), ids=lambda p: p.name)
def test_the_modules_write_no_reason_of_their_own(path: Path) -> None:
    for expr in module_reasons(path):
        assert not isinstance(expr, ast.JoinedStr), f"{path.name}:{expr.lineno}: an f-string reason"
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            assert expr.value in MEMBERS, f"{path.name}:{expr.lineno}: {expr.value!r}"
