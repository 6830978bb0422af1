"""Which builds the steps need (pure, from the compiled spec alone).

A step runs its service and every service it links (``links``/``depends_on``), so it needs the
images of all of those that have a ``build``; a push step needs its service's image and its
credentials generator's. A linked built service without a healthcheck of its own is gated by
its image's ``HEALTHCHECK``, which its build therefore reads.
"""

from __future__ import annotations

from shipway.compiler.pipeline import CompiledPipeline
from shipway.compiler.tree import RunNode


def needed_builds(compiled: CompiledPipeline, run: RunNode) -> tuple[str, ...]:
    """Services whose images ``run`` needs: its service, then each it links; a push step
    needs its service's image and its credentials generator's (it starts no links)."""
    if run.push is not None:
        generator = run.push.credentials.generator
        names: tuple[str, ...] = (run.service, *((generator,) if generator else ()))
    else:
        resolved = compiled.services[run.service]
        names = (run.service, *(link.service for link in resolved.links))
    return tuple(dict.fromkeys(n for n in names if compiled.services[n].build is not None))


def runs_here(compiled: CompiledPipeline, run: RunNode) -> bool:
    """The step may run: its filters select it, and a push step only where pushes are on."""
    return run.enabled and (run.push is None or compiled.spec.push)


def wanted_builds(compiled: CompiledPipeline) -> tuple[str, ...]:
    """Builds the regular steps that may run need, in the order services are declared.

    ``on_fail`` steps are not counted: their builds start only when one of them is about to
    run.
    """
    wanted: set[str] = set()
    for run in compiled.runs:
        if runs_here(compiled, run) and run.on_fail_of is None:
            wanted.update(needed_builds(compiled, run))
    return tuple(name for name in compiled.services if name in wanted)


def gated_by_image(compiled: CompiledPipeline) -> frozenset[str]:
    """Built services another links without a healthcheck of its own in the spec: their
    image's HEALTHCHECK (if any) gates the steps that link them, so the build reads it."""
    linked = {link.service for service in compiled.services.values() for link in service.links}
    return frozenset(
        name
        for name in linked
        if compiled.services[name].build is not None and compiled.services[name].healthcheck is None
    )
