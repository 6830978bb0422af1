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
import logging
import os
from typing import Any

import kopf
from kubernetes import config as kube_config

from shipway import GROUP, PLURAL, VERSION
from shipway.controller import heap, metrics
from shipway.controller.config import OperatorConfig
from shipway.controller.kube import Kube
from shipway.controller.podwatch import PodWatches
from shipway.controller.reconciler import PipelineSnapshot, Reconciler
from shipway.engine.objects import Key
from shipway.engine.observe import PodView

log = logging.getLogger("shipway")

_state: dict[str, Any] = {}
_pipelines: dict[Key, PipelineSnapshot] = {}
"""The latest snapshot of every Pipeline, from kopf's watch: what timers and pod changes read."""


def _reconciler() -> Reconciler:
    reconciler = _state.get("reconciler")
    if reconciler is None:
        raise RuntimeError("the operator has not started up")
    assert isinstance(reconciler, Reconciler)
    return reconciler


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = memo.get("config")
    if not isinstance(config, OperatorConfig):  # run by kopf itself, not `shipway operator`
        config = OperatorConfig.from_env(os.environ)
    _state["config"] = config
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
    configure_peering(settings, config)
    settings.scanning.disabled = not config.scanning
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    if config.metrics_port:
        metrics.serve(config.metrics_port)
        log.info("metrics on :%s/metrics", config.metrics_port)
    heap.limit_arenas()  # before the API thread pools start
    _state["trim"] = asyncio.ensure_future(heap.trim_every(10.0))
    _state["reconciler"] = Reconciler(Kube(), config.settings, config.pods)


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


def configure_peering(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Peering from ``SHIPWAY_PEERING`` (and ``SHIPWAY_PEERING_PRIORITY``), else the CLI's.

    ``kopf.run`` has already applied ``--peering``/``--priority`` (or standalone mode when
    ``--peering`` is absent) to ``settings``; the environment overrides that. Peering is
    mandatory: a replica without its KopfPeering object stays paused rather than act alone.
    """
    if config.peering:
        settings.peering.name = config.peering
        settings.peering.priority = config.peering_priority
        settings.peering.mandatory = True
        settings.peering.standalone = False
    elif not settings.peering.mandatory:  # neither the environment nor --peering
        settings.peering.standalone = True


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
        config = _state["config"]
        assert isinstance(config, OperatorConfig)
        watches = _state["pods"] = PodWatches(_pods_changed, config.clusterwide)
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
