"""The step pod: the step's service, its linked services as native sidecars, docker if asked.

* every ``volumes`` / ``volumes_from`` entry is a ``subPath`` of the pipeline's one claim;
* compose ``entrypoint`` → container ``command``, compose/step ``command`` → ``args``;
* ``links`` / ``depends_on`` → native sidecars (init containers with ``restartPolicy: Always``)
  in the step's pod, reachable by name through ``hostAliases`` (one network namespace), gated
  by a ``startupProbe`` made from the service's healthcheck (or its built image's).
"""

from __future__ import annotations

from shipway.compiler.pipeline import CompiledPipeline
from shipway.engine.cienv import ci_environment
from shipway.engine.intents import StepToCreate
from shipway.engine.naming import container_name, host_names
from shipway.engine.objects import Manifest
from shipway.engine.pods import docker
from shipway.engine.pods.containers import probe, service_container
from shipway.engine.pods.frame import (
    PodFrame,
    PodMeta,
    assemble,
    containers,
    deadline,
    host_aliases,
    init_containers,
)
from shipway.engine.settings import PodOptions
from shipway.models import SourceStatus


def step_pod(
    compiled: CompiledPipeline,
    create: StepToCreate,
    frame: PodFrame,
    options: PodOptions,
    *,
    source: SourceStatus | None = None,
) -> Manifest:
    """The Pod running one attempt of one step."""
    run = compiled.run(create.step_id)
    service = compiled.services[run.service]
    env = ci_environment(frame.ref, compiled, source)
    args = run.command if run.command is not None else service.command
    images = dict(create.images)  # built services run their image by digest
    image_checks = dict(create.healthchecks)  # their HEALTHCHECKs, unless the spec sets one
    security = options.security_context
    main = service_container(service, args, env, security, image=images.get(service.name))
    sidecars: list[Manifest] = []
    aliases: list[str] = []
    for link in service.links:
        linked = compiled.services[link.service]
        sidecar = service_container(
            linked, linked.command, env, security, image=images.get(link.service)
        )
        sidecar["restartPolicy"] = "Always"
        healthcheck = linked.healthcheck or image_checks.get(link.service)
        if healthcheck is not None and (check := probe(healthcheck)):
            sidecar["startupProbe"] = check
        sidecars.append(sidecar)
        for name in (*host_names(link.service), *link.aliases):
            if name not in aliases:
                aliases.append(name)
    users = [service, *(compiled.services[link.service] for link in service.links)]
    clients = [container_name(s.name) for s in users if s.docker]
    meta = PodMeta(create.name, create.step_id, create.attempt, main["name"], run.name)
    return assemble(
        frame,
        meta,
        containers(main),
        frame.workspace() if compiled.uses_workspace else None,
        frame.account(),
        deadline(create.active_deadline),
        frame.pinned(),
        frame.placement(),
        frame.pulls(run.pull_secret),
        init_containers(sidecars),
        host_aliases(aliases),
        docker.sidecar(clients, options.docker),
        grace=options.termination_grace_seconds,
    )
