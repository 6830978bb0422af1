"""Wait until CustomResourceDefinitions serve their resources (condition ``Established``).

Not ``kubectl wait --for=condition=Established``: for a CRD created a moment before, whose
``status.conditions`` the apiextensions controller has not written yet (null), kubectl fails at
once with ".status.conditions accessor error: <nil> is of the type <nil>" instead of waiting.
That race stopped a whole end-to-end run (every test errored at setup), so the tests, the
benchmarks and the demo poll the condition here instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from localkube.errors import LocalkubeError

ESTABLISHED = 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
"""The Established condition's status: "True" once the CRD's API serves; empty before."""


def wait_established(
    get: Callable[..., str],
    names: Iterable[str],
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until every CRD in ``names`` is Established; raise naming those that are not.

    ``get(*kubectl_args)`` runs kubectl and returns its output, or "" (not raising) when it
    fails: a CRD whose status is still null may make kubectl's JSONPath fail, which only means
    "not yet".
    """
    pending = list(names)
    deadline = clock() + timeout
    while True:
        pending = [n for n in pending if get("get", "crd", n, "-o", ESTABLISHED).strip() != "True"]
        if not pending:
            return
        if clock() >= deadline:
            raise LocalkubeError(
                f"CustomResourceDefinition(s) {', '.join(pending)} not Established after "
                f"{timeout:g}s (`kubectl get crd {pending[0]} -o yaml` shows why)"
            )
        sleep(interval)
