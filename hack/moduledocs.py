"""The module list of ``docs/operator.md``, written from the module docstrings (``make docs``).

Each module and package of ``operator/shipway`` gets one line: the summary sentence of its
docstring (the first line, joined with the next ones while the sentence goes on). The list sits
between ``<!-- modules:start -->`` and ``<!-- modules:end -->``; ``--write`` rewrites it,
``--check`` (in ``make check``) fails when it drifts, like the CRD's check. It walks the tree
rather than naming modules, so a moved or new module only needs ``make docs`` again.

Usage: ``python hack/moduledocs.py --write | --check``.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "shipway"
DOC = ROOT / "docs" / "operator.md"
START = "<!-- modules:start: written by `make docs` from the module docstrings -->"
END = "<!-- modules:end -->"
_ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|exc):`~?([^`]+)`")


def summary(path: Path) -> str:
    """The docstring's summary sentence, in Markdown; a module without one is an error."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not doc:
        raise SystemExit(f"{path}: no module docstring")
    lines: list[str] = []
    for line in doc.splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
        if line.rstrip().endswith((".", ":", "!", "?")):
            break
    text = " ".join(lines).rstrip(":")
    return _ROLE.sub(r"``\1``", text).replace("``", "`")


def _entries(folder: Path, depth: int) -> list[str]:
    """The lines for one package: its modules first, then its subpackages, each sorted."""
    indent = "  " * depth
    out: list[str] = []
    modules = sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")
    packages = sorted(p for p in folder.iterdir() if (p / "__init__.py").is_file())
    for module in modules:
        out.append(f"{indent}- `{module.name}`: {summary(module)}")
    for package in packages:
        out.append(f"{indent}- `{package.name}/`: {summary(package / '__init__.py')}")
        out.extend(_entries(package, depth + 1))
    return out


def module_list(package: Path = PACKAGE) -> str:
    """The whole list, markers included."""
    head = f"- `{package.name}/`: {summary(package / '__init__.py')}"
    return "\n".join([START, head, *_entries(package, 1), END])


def rewritten(doc: str, listing: str) -> str:
    """``doc`` with the text between the markers replaced by ``listing``."""
    start, end = doc.find(START), doc.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOC.relative_to(ROOT)}: the markers {START!r} … {END!r} are missing")
    return doc[:start] + listing + doc[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the list in docs/operator.md")
    mode.add_argument("--check", action="store_true", help="fail when the list has drifted")
    args = parser.parse_args(argv)
    doc = DOC.read_text(encoding="utf-8")
    want = rewritten(doc, module_list())
    if args.write:
        if want != doc:
            DOC.write_text(want, encoding="utf-8")
        print(f"{DOC.relative_to(ROOT)}: module list written")
        return 0
    if want != doc:
        print(
            f"{DOC.relative_to(ROOT)}: the module list differs from the module docstrings; "
            "run `make docs`",
            file=sys.stderr,
        )
        return 1
    print(f"{DOC.relative_to(ROOT)}: module list up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
