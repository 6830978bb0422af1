"""A push step's target, decided when it is about to start (pure).

The tag is rendered from the values the pipeline's steps see (``CI_*``), so ``{{ .Branch }}``
is what ``$CI_BRANCH`` says. A tag that cannot be rendered fails the step before any pod
runs, naming the variable that has no value.
"""

from __future__ import annotations

from shipway.compiler.pipeline import CompiledPipeline
from shipway.compiler.templates import TemplateError, as_tag, render, values_from
from shipway.compiler.tree import RunNode
from shipway.engine.cienv import ci_environment
from shipway.engine.intents import PushTarget
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import parse_time
from shipway.models import SourceStatus


def push_target(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    run: RunNode,
    image: str | None,
    *,
    source: SourceStatus | None = None,
) -> tuple[PushTarget | None, str | None]:
    """Where ``run`` pushes ``image`` (``repository@digest``), or why it cannot.

    ``source``: what the checkout found (the commit of ``{{ .CommitID }}``, the branch).
    """
    push = run.push
    assert push is not None, f"step {run.id} is not a push step"
    if image is None or "@" not in image:
        return None, f"the image of {push.service!r} has not been built"
    values = values_from(
        dict(ci_environment(ref, compiled, source)),
        build_tag=compiled.build_tag,
        step_name=run.name,
        service=push.service,
        image_name=push.image_name,
        created=parse_time(ref.created_at),
    )
    try:
        text = render(push.tag, values)
    except TemplateError as exc:
        return None, f"image_tag {push.tag.source!r}: {exc}"
    tag = as_tag(text)
    if not tag:
        return None, f"image_tag {push.tag.source!r} renders to {text!r}: no character of a tag"
    digest = image.rsplit("@", 1)[1]
    return PushTarget(source=image, digest=digest, target=f"{push.repository}:{tag}"), None
