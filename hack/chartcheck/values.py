"""The documented values of the chart and the table of them in ``docs/helm.md``: every key
has a comment, ``# --`` keys are the table's rows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "shipway"
VALUES = CHART / "values.yaml"
HELM_DOC = ROOT / "docs" / "helm.md"
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"
KUBE_VERSION = "1.35.0"

KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s|$)")


@dataclass(frozen=True)
class Row:
    key: str
    default: Any
    description: str


def parse_values(text: str) -> tuple[list[Row], list[str]]:
    """The documented rows, and the keys that have no comment at all."""
    data = yaml.safe_load(text) or {}
    rows: list[Row] = []
    bare: list[str] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        match = KEY.match(line)
        if match is None:  # a list item or a continuation: not a key
            comment = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        path = ".".join(k for _, k in stack)
        if not comment:
            bare.append(path)
        elif comment[0].startswith("--"):
            text_ = " ".join([comment[0][2:].strip(), *comment[1:]]).strip()
            rows.append(Row(path, _lookup(data, path), text_))
        comment = []
    return rows, bare


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


def _cell(value: Any) -> str:
    return "`" + json.dumps(value, separators=(",", ":")).replace("|", "\\|") + "`"


def table(rows: list[Row]) -> str:
    lines = ["| Key | Default | Description |", "|---|---|---|"]
    for row in rows:
        description = row.description.replace("|", "\\|")
        lines.append(f"| `{row.key}` | {_cell(row.default)} | {description} |")
    return "\n".join(lines)


def doc_with_table(doc: str, generated: str) -> str:
    if START not in doc or END not in doc:
        raise SystemExit(f"docs/helm.md lacks the {START} ... {END} markers")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{generated}\n{END}{tail}"
