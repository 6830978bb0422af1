"""The generated module list of docs/operator.md (hack/moduledocs.py): complete, and current."""

from __future__ import annotations

from pathlib import Path

import pytest

import moduledocs


def test_every_module_and_package_has_one_line() -> None:
    listing = moduledocs.module_list().splitlines()[1:-1]
    files = sorted(moduledocs.PACKAGE.rglob("*.py"))
    assert len(listing) == len(files)
    assert all(line.lstrip().startswith("- `") and "`: " in line for line in listing)


def test_a_wrapped_summary_is_joined_and_rst_becomes_markdown(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Uses :class:`Plan` and ``x``, a summary\nwrapped here.\n\nMore."""\n')
    assert moduledocs.summary(module) == "Uses `Plan` and `x`, a summary wrapped here."


def test_a_module_without_a_docstring_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    with pytest.raises(SystemExit, match="no module docstring"):
        moduledocs.summary(tmp_path / "m.py")


def test_the_committed_list_is_current() -> None:
    assert moduledocs.main(["--check"]) == 0
