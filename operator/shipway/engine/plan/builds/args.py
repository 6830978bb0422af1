"""A build's args rendered when its pod is made (pure).

Codeship renders every build arg value as a template over the same values as a push step's
``image_tag`` (``CI: "{{ .Ci }}"``), from what the pipeline's steps see as ``CI_*``: the
values of ``spec.ci`` and what the checkout found. Unlike a tag, a value the build does not
know renders as "" (Codeship: "not all of these values will be available locally via jet").
Rendered from the resource and its status alone, so a restarted operator renders the same.
"""

from __future__ import annotations

from shipway.compiler.builds import ResolvedBuild
from shipway.compiler.pipeline import CompiledPipeline
from shipway.compiler.templates import render, values_from
from shipway.engine.cienv import ci_environment
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import parse_time
from shipway.models import SourceStatus


def render_args(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    build: ResolvedBuild,
    source: SourceStatus | None = None,
) -> tuple[tuple[str, str], ...]:
    """(name, value) of each of ``build``'s args; ``source``: what the checkout found."""
    if not build.args:
        return ()
    values = values_from(
        dict(ci_environment(ref, compiled, source)),
        build_tag=compiled.build_tag,
        step_name="",
        service=build.service,
        image_name=build.image_name or "",
        created=parse_time(ref.created_at),
    )
    return tuple((name, render(value, values, allow_empty=True)) for name, value in build.args)
