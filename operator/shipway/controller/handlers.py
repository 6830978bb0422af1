"""kopf wiring: watch Pipelines, hand every change of a pipeline or its pods to the reconciler.

kopf watches Pipelines with one ``on.event`` handler, so kopf itself writes nothing to the
cluster (no finalizers, no progress annotations): per step the operator makes one pod create,
one status patch and one Event. Step pods, thousands of short-lived objects, are watched by
:mod:`shipway.controller.podwatch` into a compact store instead of kopf's per-object machinery. Garbage
collection through owner references removes pods and the claim when a Pipeline is deleted,
even while the operator is down.

No pipeline is planned before the pods of its namespace have been listed once, so after a
(re)start the first decisions already see every existing pod and never recreate a step.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes import config as kube_config

from shipway import GROUP, PLURAL, VERSION
from shipway.controller import heap, metrics
from shipway.controller.kube import Kube
from shipway.controller.podwatch import PodWatches
from shipway.controller.reconciler import Key, PipelineSnapshot, Reconciler
from shipway.engine.manifests import PodOptions
from shipway.engine.observe import PodView
from shipway.engine.planner import Settings
from shipway.models.durations import parse_duration

log = logging.getLogger("shipway")

_state: dict[str, Any] = {}
_pipelines: dict[Key, PipelineSnapshot] = {}
"""The latest snapshot of every Pipeline, from kopf's watch: what timers and pod changes read."""
_scope = {"clusterwide": False}


def set_clusterwide(clusterwide: bool) -> None:
    """``--all-namespaces``: one pod watch for the cluster instead of one per namespace."""
    _scope["clusterwide"] = clusterwide


def _reconciler() -> Reconciler:
    reconciler = _state.get("reconciler")
    if reconciler is None:
        raise RuntimeError("the operator has not started up")
    assert isinstance(reconciler, Reconciler)
    return reconciler


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # our own Events only: one per step, not kopf's log lines
    if not log.isEnabledFor(logging.DEBUG):
        # kopf logs every handled watch event at INFO: thousands of lines per busy minute.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf's worker for an object keeps its last event's body until it idles out: with 1000
    # pipelines moving every few seconds, kopf's default 5 s kept ~25 MB of bodies alive.
    settings.queueing.idle_timeout = 1.0
    configure_peering(settings, os.environ)
    settings.scanning.disabled = not scanning_enabled(os.environ)
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    grace = os.environ.get("SHIPWAY_START_GRACE")
    port = os.environ.get("SHIPWAY_METRICS_PORT", "").strip()
    if port and port != "0":
        metrics.serve(int(port))
        log.info("metrics on :%s/metrics", port)
    heap.limit_arenas()  # before the API thread pools start
    _state["trim"] = asyncio.ensure_future(heap.trim_every(10.0))
    _state["reconciler"] = Reconciler(
        Kube(),
        Settings(start_grace=parse_duration(grace)) if grace else Settings(),
        pod_options(os.environ),
    )


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: only an on.event handler here, which never looks at one.

    kopf's default builds one for every event anyway (a deep copy of the body, then a diff):
    about a twentieth of the operator's CPU time under load, for nothing.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> Any:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return None


def pod_options(env: Mapping[str, str]) -> PodOptions:
    """The step pods' cluster-wide options, from the operator's environment.

    ``SHIPWAY_RESTRICTED_PODS`` (1/true/yes) applies :data:`RESTRICTED` to every container;
    ``SHIPWAY_DEFAULT_STEP_SERVICE_ACCOUNT`` names the ServiceAccount of step pods whose
    Pipeline sets no ``serviceAccountName``; ``SHIPWAY_STEP_TOLERATIONS`` (a JSON list of
    tolerations) and ``SHIPWAY_STEP_NODE_SELECTOR`` (a JSON object of labels) send every step
    pod to a dedicated, possibly tainted, pool of nodes.
    """
    restricted = env.get("SHIPWAY_RESTRICTED_PODS", "").lower() in ("1", "true", "yes")
    account = env.get("SHIPWAY_DEFAULT_STEP_SERVICE_ACCOUNT", "").strip()
    return PodOptions(
        security_context=RESTRICTED if restricted else None,
        default_service_account=account or None,
        tolerations=_tolerations(env.get("SHIPWAY_STEP_TOLERATIONS", "")),
        node_selector=_node_selector(env.get("SHIPWAY_STEP_NODE_SELECTOR", "")),
    )


def _json_setting(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from None


def _tolerations(value: str) -> tuple[dict[str, Any], ...]:
    if not value.strip():
        return ()
    parsed = _json_setting("SHIPWAY_STEP_TOLERATIONS", value)
    if not isinstance(parsed, list) or not all(isinstance(t, dict) for t in parsed):
        raise ValueError("SHIPWAY_STEP_TOLERATIONS must be a JSON list of toleration objects")
    return tuple(parsed)


def _node_selector(value: str) -> dict[str, str] | None:
    if not value.strip():
        return None
    parsed = _json_setting("SHIPWAY_STEP_NODE_SELECTOR", value)
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise ValueError("SHIPWAY_STEP_NODE_SELECTOR must be a JSON object of string labels")
    return parsed or None


def configure_peering(settings: kopf.OperatorSettings, env: Mapping[str, str]) -> None:
    """Peering from ``SHIPWAY_PEERING`` (and ``SHIPWAY_PEERING_PRIORITY``), else the CLI's.

    ``kopf.run`` has already applied ``--peering``/``--priority`` (or standalone mode when
    ``--peering`` is absent) to ``settings``; the environment overrides that. Peering is
    mandatory: a replica without its KopfPeering object stays paused rather than act alone.
    """
    name = env.get("SHIPWAY_PEERING", "").strip()
    if name:
        settings.peering.name = name
        settings.peering.priority = peering_priority(env.get("SHIPWAY_PEERING_PRIORITY"))
        settings.peering.mandatory = True
        settings.peering.standalone = False
    elif not settings.peering.mandatory:  # neither the environment nor --peering
        settings.peering.standalone = True


def scanning_enabled(env: Mapping[str, str]) -> bool:
    """``SHIPWAY_SCANNING`` (default on): kopf's cluster-wide watch of namespaces and CRDs.

    Off when the operator has only namespaced Roles (the Helm chart's namespaced mode): kopf
    then serves exactly the namespaces it was given instead of retrying forbidden lists.
    """
    return env.get("SHIPWAY_SCANNING", "").strip().lower() not in ("0", "false", "no", "off")


def peering_priority(value: str | None) -> int:
    """``SHIPWAY_PEERING_PRIORITY``: an integer (default 0), or ``auto`` for a random one.

    Replicas of one Deployment share their pod template, so they cannot be given distinct
    numbers; ``auto`` draws one from [1, 2**31), distinct with overwhelming probability
    (kopf pauses peers of equal priority rather than letting both act).
    """
    if value is None or not value.strip():
        return 0
    if value.strip().lower() == "auto":
        return random.SystemRandom().randrange(1, 2**31)
    return int(value)


RESTRICTED: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


@kopf.on.cleanup()
async def shutdown(**_: Any) -> None:
    trim = _state.pop("trim", None)
    if isinstance(trim, asyncio.Future):
        trim.cancel()
    watches = _state.pop("pods", None)
    if isinstance(watches, PodWatches):
        watches.stop()
    reconciler = _state.pop("reconciler", None)
    if isinstance(reconciler, Reconciler):
        await asyncio.gather(*reconciler.background, return_exceptions=True)


def _pod_watches() -> PodWatches:
    watches = _state.get("pods")
    if watches is None:
        watches = _state["pods"] = PodWatches(_pods_changed, _scope["clusterwide"])
    assert isinstance(watches, PodWatches)
    return watches


def _pods_changed(key: Key) -> None:
    reconciler = _state.get("reconciler")
    if isinstance(reconciler, Reconciler):
        reconciler.spawn(_run(key))


async def _run(key: Key) -> None:
    reconciler = _reconciler()
    watches = _pod_watches()
    await watches.ready(key[0])

    def requeue(again: Key) -> None:
        reconciler.spawn(_run(again))

    def read() -> tuple[PipelineSnapshot | None, list[PodView]]:
        return _pipelines.get(key), watches.store.pods(key)

    await reconciler.reconcile_latest(key, read, requeue)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def pipeline_event(body: kopf.Body, type: str | None, **_: Any) -> None:
    """Note the pipeline's latest state and reconcile it in the background.

    Returning at once lets kopf drop the event: a handler awaiting the reconcile kept every
    busy pipeline's whole body (managed fields and all) alive, ~25 MB per 1000 pipelines.
    """
    key = (body.metadata.namespace or "", body.metadata.name or "")
    if type == "DELETED":
        _pipelines.pop(key, None)
    else:
        _pipelines[key] = PipelineSnapshot.from_body(body)
    _reconciler().spawn(_run(key))
