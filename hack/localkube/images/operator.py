"""The operator image's pinned dependencies (``docker/requirements.txt``, ``make image-lock``).

The image itself is built from the repository's ``Dockerfile`` by the local cluster's BuildKit
(:mod:`localkube.addons.buildkit.build`, ``make operator-image``); this module only re-pins the lock
file the Dockerfile installs from: pyproject.toml's dependencies resolved in a scratch venv of
Debian 12's Python 3.11 (the image's interpreter).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from localkube import config
from localkube.process import run

ROOT = config.REPO
PYTHON = "/usr/bin/python3.11"

LOCK_HEADER = """\
# Exact versions of the operator's runtime dependencies, installed into the image by the
# Dockerfile (built on the local cluster by hack/localkube/buildkit_build.py).
# Regenerate after changing pyproject.toml's dependencies: make image-lock
"""


def lock_file(repo: Path = ROOT) -> Path:
    return repo / "docker" / "requirements.txt"


def write_lock(repo: Path = ROOT) -> Path:
    """Resolve pyproject.toml's dependencies in a scratch venv; pin them in the lock file."""
    with tempfile.TemporaryDirectory(prefix="shipway-lock-") as tmp:
        venv = Path(tmp) / "venv"
        run([PYTHON, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        run([*pip, "install", "-q", str(repo)])
        frozen = run([*pip, "freeze", "--exclude", "shipway"]).stdout
    lock_file(repo).write_text(LOCK_HEADER + frozen)
    return lock_file(repo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkube.images.operator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--lock", action="store_true", help="re-pin docker/requirements.txt")
    args = parser.parse_args(argv)
    if not args.lock:
        parser.error(
            "the image is built by `python -m localkube.addons.buildkit.build`; use --lock"
        )
    print(f"wrote {write_lock()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
