"""The key-handling tables of docs/codeship-import.md say what the converter does, key for key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shipway.codeship.keys import (
    BUILD_KEYS,
    SERVICE_KEYS,
    SERVICES_FILE_KEYS,
    STEP_KEYS,
    STEP_TYPES,
    KeyRule,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "codeship-import.md"

TABLES: dict[str, dict[str, KeyRule]] = {
    "codeship-services.yml, top level": SERVICES_FILE_KEYS,
    "codeship-services.yml, per service": SERVICE_KEYS,
    "`build:` of a service": BUILD_KEYS,
    "codeship-steps.yml": STEP_KEYS,
    "step `type`": STEP_TYPES,
}


def doc_tables() -> dict[str, dict[str, str]]:
    """Heading → {key: handling} for each table of the import page."""
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = tables.setdefault(line.removeprefix("## ").strip(), {})
        elif current is not None and line.startswith("| `"):
            keys, handling = (cell.strip() for cell in line.strip("|").split("|")[:2])
            for key in re.findall(r"`([^`]+)`", keys):
                assert key not in current, f"{key} twice in the page's table"
                current[key] = handling
    return tables


@pytest.mark.parametrize("heading", list(TABLES))
def test_the_doc_table_matches_the_converter(heading: str) -> None:
    documented = doc_tables().get(heading)
    assert documented is not None, f"docs/codeship-import.md has no table '## {heading}'"
    actual = {key: str(rule.handling) for key, rule in TABLES[heading].items()}
    assert documented == actual
