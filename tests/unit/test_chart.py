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
from chartcheck.values import HELM_DOC, VALUES, doc_with_table, parse_values, table
from localkube.addons.buildkit import build as buildkit_build
from localkube.addons.buildkit import images as buildkit_images
from localkube.images import operator as operator_image

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "shipway"


def test_default_image_is_the_one_the_local_build_pushes() -> None:
    """The local BuildKit build pushes the chart's default repository path and tag."""
    values = yaml.safe_load(VALUES.read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    tag = values["image"]["tag"] or chart["appVersion"]
    path = values["image"]["repository"].split("/", 1)[1]  # without ghcr.io
    assert buildkit_build.OPERATOR_REPOSITORY.endswith(f"/{path}")
    assert tag == buildkit_build.OPERATOR_TAG
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


def test_dockerfile_runs_as_the_chart_expects_and_its_frontend_is_mirrored() -> None:
    """The image's user is the pod's runAsUser; `# syntax=` names the frontend the local
    cluster's mirror serves (docs/buildkit.md)."""
    text = (ROOT / "Dockerfile").read_text()
    values = yaml.safe_load(VALUES.read_text())
    pod = values["podSecurityContext"]
    assert re.search(rf"^USER {pod['runAsUser']}:{pod['runAsGroup']}$", text, re.M)
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert entrypoint is not None
    assert json.loads(entrypoint[1]) == ["/opt/shipway/bin/python", "-m", "shipway"]
    syntax = text.splitlines()[0]
    assert syntax == "# syntax=docker/dockerfile:1"
    assert f"docker.io/{syntax.split('=')[1]}" == buildkit_images.FRONTEND_IMAGE
    assert "-r docker/requirements.txt" in text
    assert operator_image.lock_file(ROOT).is_file()


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
