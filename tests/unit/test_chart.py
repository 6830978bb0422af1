"""The Helm chart's static promises, checked without a cluster or a helm binary.

``make chart-check`` runs helm itself; these keep the chart, the image build and docs/helm.md
from drifting apart in the unit suite as well.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

import shipway
from chart_check import HELM_DOC, VALUES, doc_with_table, parse_values, table
from localkube import operator_image

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "shipway"


def test_default_image_is_the_one_the_local_build_imports() -> None:
    values = yaml.safe_load(VALUES.read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    tag = values["image"]["tag"] or chart["appVersion"]
    assert f"{values['image']['repository']}:{tag}" == operator_image.REF
    assert chart["appVersion"] == shipway.__version__


def test_every_runtime_dependency_is_pinned_for_the_image() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    wanted = {norm(re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]) for dep in project["dependencies"]}
    lines = operator_image.lock_file(ROOT).read_text().splitlines()
    pinned = {norm(line.split("==")[0]) for line in lines if "==" in line}
    assert wanted <= pinned, f"run `make image-lock`: {sorted(wanted - pinned)} not pinned"


def test_every_values_key_is_commented() -> None:
    _, bare = parse_values(VALUES.read_text())
    assert bare == []


def test_helm_doc_values_table_matches_values_yaml() -> None:
    rows, _ = parse_values(VALUES.read_text())
    doc = HELM_DOC.read_text()
    assert doc_with_table(doc, table(rows)) == doc, "run `make chart-readme`"


def test_dockerfile_builds_the_layout_the_local_image_has() -> None:
    """Same venv, user, environment and entrypoint as hack/localkube/operator_image.py."""
    text = (ROOT / "Dockerfile").read_text()
    config = operator_image.IMAGE_CONFIG
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert entrypoint is not None
    assert json.loads(entrypoint[1]) == list(config.entrypoint)
    assert re.search(rf"^USER {re.escape(config.user)}$", text, re.M)
    assert f"python3.11 -m venv {operator_image.VENV}" in text
    assert "docker/prune_venv.py /opt/shipway" in text
    assert "-r docker/requirements.txt" in text
    for key, value in config.env.items():
        assert f"{key}={value}" in text
    for package in ("python3.11-minimal", "libpython3.11-stdlib"):
        assert package in text
        assert package in operator_image.PYTHON_PACKAGES


def test_dockerfile_copies_only_what_dockerignore_lets_in() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(line.split()[1:-1])
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert source.split("/")[0] in allowed, source
