"""kopf wiring: settings, start-up and shutdown, and peering's say over which replica acts.

kopf runs the process (signals, start-up and clean-up, the admission server, liveness) and
its peering; it handles no Pipeline event and writes nothing to the cluster (no finalizers,
no progress annotations): per step the operator makes one pod create, one status patch and
one Event. Pipelines (:mod:`shipway.controller.pipelinewatch`) and step pods
(:mod:`shipway.controller.podwatch`) are watched by the operator itself, each event
decoded once, instead of going through kopf's per-object machinery; the Pipeline watch runs
while peering lets this replica act (:mod:`shipway.controller.gate`), always when
standalone. Garbage collection through owner references removes pods and the claim when a
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

from shipway.controller import gate, heap, metrics
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
    heap.tune_collector()  # the process is set up: what it holds now lives as long as it does
    operator.start()
    if settings.peering.standalone:
        operator.follow()
    else:  # kopf starts the gate's daemon once peering lets this replica act
        gate.register(
            gate.PeeringGate(operator.follow, operator.unfollow),
            settings.peering.name,
            clusterwide=config.clusterwide,
        )
    if config.history.api_port and config.history.url is not None:
        # Imported only when served: the history stack (SQLAlchemy) costs ~20 MB of memory.
        from shipway.controller.historyapi import server as historyapi

        memo["history_api"] = await historyapi.start(config.history)


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: no handler here looks at one (the peering gate's daemon neither).

    kopf's default builds one for every event anyway (a deep copy of the body, then a diff).
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
