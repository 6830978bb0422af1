"""This tree's CRD, kept in place while a test's pipelines run on the shared cluster.

Test sessions of other branches apply their own (older) CRD to the same cluster at any time.
The API server checks every write of a Pipeline, its status included, against the CRD of the
moment: an older one refuses fields it does not know in the spec (HTTP 422) and prunes them
from the status. ``kept`` puts this tree's CRD back whenever it is not the one in place.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from .pipelines import ROOT, Kubectl

SPEC = "{.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties"


def apply(k: Kubectl) -> None:
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))


def current(k: Kubectl, fields: tuple[str, ...]) -> bool:
    """The CRD in place knows every one of ``fields`` of the spec."""
    for field in fields:
        found = k.run(
            "get", "crd", "pipelines.shipway.dev", "-o", f"jsonpath={SPEC}.{field}}}", check=False
        )
        if found.returncode != 0 or not found.stdout.strip():
            return False
    return True


@contextlib.contextmanager
def kept(k: Kubectl, fields: tuple[str, ...]) -> Iterator[None]:
    """Apply this tree's CRD now and again whenever one without ``fields`` replaced it."""
    apply(k)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(0.5):
            if not current(k, fields):
                apply(k)

    thread = threading.Thread(target=keep, daemon=True, name="crd-keeper")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
