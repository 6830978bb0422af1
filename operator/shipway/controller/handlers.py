"""kopf wiring: settings, start-up and shutdown, and every Pipeline event to the operator.

kopf watches Pipelines with one ``on.event`` handler, so kopf itself writes nothing to the
cluster (no finalizers, no progress annotations): per step the operator makes one pod create,
one status patch and one Event. Step pods, thousands of short-lived objects, are watched by
:mod:`shipway.controller.podwatch` into a compact store instead of kopf's per-object
machinery. Garbage collection through owner references removes pods and the claim when a
Pipeline is deleted, even while the operator is down. The operator's state lives in one
:class:`~shipway.controller.runtime.Operator`, kept in kopf's memo.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

import kopf
from kubernetes import config as kube_config

from shipway import GROUP, PLURAL, VERSION
from shipway.controller import metrics
from shipway.controller.builder import discover, discover_docker, discover_push
from shipway.controller.config import OperatorConfig
from shipway.controller.kube import Kube
from shipway.controller.runtime import Operator

log = logging.getLogger("shipway")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = memo.get("config")
    if not isinstance(config, OperatorConfig):  # run by kopf itself, not `shipway operator`
        config = OperatorConfig.from_env(os.environ)
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
    kube = Kube()
    config = replace(
        config,
        build=await discover(kube, config.build),
        pods=replace(
            config.pods,
            push=await discover_push(kube, config.pods.push),
            docker=await discover_docker(kube, config.pods.docker),
        ),
    )
    operator = memo["operator"] = Operator(config, kube)
    operator.start()
    if config.history.api_port and config.history.url is not None:
        # Imported only when served: the history stack (SQLAlchemy) costs ~20 MB of memory.
        from shipway.controller.historyapi import server as historyapi

        memo["history_api"] = await historyapi.start(config.history)


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
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    operator = memo.get("operator")
    if isinstance(operator, Operator):
        await operator.stop()
    runner = memo.get("history_api")
    if runner is not None:
        await runner.cleanup()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def pipeline_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Note the pipeline's latest state and reconcile it in the background.

    Returning at once lets kopf drop the event: a handler awaiting the reconcile kept every
    busy pipeline's whole body (managed fields and all) alive, ~25 MB per 1000 pipelines.
    """
    operator = memo.get("operator")
    if not isinstance(operator, Operator):
        raise RuntimeError("the operator has not started up")
    operator.pipeline_changed(body, deleted=type == "DELETED")
