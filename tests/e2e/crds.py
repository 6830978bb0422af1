"""This tree's CRD, kept in place while a test's pipelines run on the shared cluster.

Test sessions of other branches apply their own (older) CRD to the same cluster at any time.
The API server checks every write of a Pipeline, its status included, against the CRD of the
moment: an older one refuses fields it does not know in the spec (HTTP 422) and prunes them
from the status. ``kept`` puts this tree's CRD back whenever the one in place lacks a field of
this tree's schema (spec or status, at any depth): one helper for every test that needs it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import yaml

from .pipelines import ROOT, Kubectl

CRD = ROOT / "crds" / "shipway.dev_pipelines.yaml"
#: Every CRD of this tree, by its name in the cluster (a Repository's status is pruned too).
CRDS = {
    f"{doc['spec']['names']['plural']}.{doc['spec']['group']}": path
    for path in sorted((ROOT / "crds").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc and doc.get("kind") == "CustomResourceDefinition"
}


def apply(k: Kubectl) -> None:
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))


def _paths(schema: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Every property path of an OpenAPI schema (``spec.services.*.build``, ...)."""
    found: set[str] = set()
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        found.add(path)
        found |= _paths(sub, path)
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            found |= _paths(sub, f"{prefix}.*")
    return found


def _schema(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    schema: Mapping[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@cache
def ours(name: str = "pipelines.shipway.dev") -> frozenset[str]:
    """This tree's property paths of one CRD."""
    return frozenset(_paths(_schema(yaml.safe_load(CRDS[name].read_text()))))


def current(k: Kubectl) -> bool:
    """Each CRD in place knows every field of this tree's (it may know more)."""
    for name in CRDS:
        found = k.run("get", "crd", name, "-o", "json", check=False)
        if found.returncode != 0:
            return False
        try:
            served = _paths(_schema(json.loads(found.stdout)))
        except (ValueError, KeyError, IndexError):
            return False
        if not ours(name) <= served:
            return False
    return True


@contextlib.contextmanager
def kept(k: Kubectl, interval: float = 1.0) -> Iterator[None]:
    """Apply this tree's CRD now and again whenever one lacking its fields replaced it."""
    apply(k)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(interval):
            if not current(k):
                apply(k)

    thread = threading.Thread(target=keep, daemon=True, name="crd-keeper")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
