"""Strip the operator's virtualenv down to what runs: ``python prune_venv.py /opt/shipway``.

Run by the Dockerfile's builder stage (standard library only).

* the packaging tools (pip, setuptools, wheel): the image installs nothing at run time;
* ``kubernetes/aio``: the asyncio twin of the official client, about a third of the image,
  never imported (Shipway uses the synchronous client, kopf its own aiohttp client);
* ``bin/activate*`` and other scripts: the entrypoint is ``python -m shipway``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

#: Top-level names in site-packages to remove (packages, modules and their dist-info).
PACKAGING = (
    "pip",
    "setuptools",
    "wheel",
    "pkg_resources",
    "_distutils_hack",
    "distutils-precedence.pth",
)
#: Sub-packages nothing imports.
UNUSED = ("kubernetes/aio",)
#: What stays in bin/: the interpreter links.
KEEP_BIN = ("python", "python3", "python3.11")


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"{venv}: expected one lib/python3*/site-packages, found {found}")
    return found[0]


def prune(venv: Path) -> list[str]:
    """Remove the files above from ``venv``; return what was removed (relative paths)."""
    site = site_packages(venv)
    removed: list[str] = []
    doomed: list[Path] = []
    for entry in sorted(site.iterdir()):
        stem = entry.name.split("-", 1)[0].lower() if entry.name.endswith(".dist-info") else None
        if entry.name in PACKAGING or (stem is not None and stem in PACKAGING):
            doomed.append(entry)
    doomed.extend(site / rel for rel in UNUSED if (site / rel).exists())
    bin_dir = venv / "bin"
    if bin_dir.is_dir():
        doomed.extend(p for p in sorted(bin_dir.iterdir()) if p.name not in KEEP_BIN)
    for path in doomed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(str(path.relative_to(venv)))
    return removed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: prune_venv.py VENV", file=sys.stderr)
        return 2
    for name in prune(Path(argv[0])):
        print(f"removed {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
