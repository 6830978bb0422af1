"""From a Pipeline's raw spec to a :class:`CompiledPipeline`, or every error with its field.

The same function serves ``shipway validate`` and the operator, so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shipway.compiler.approval import gates, manual_errors
from shipway.compiler.errors import FieldError, InvalidSpecError, raise_if_any
from shipway.compiler.filters import build_tag
from shipway.compiler.limits import status_errors, structure_errors
from shipway.compiler.push import Credentials
from shipway.compiler.servicenames import name_collisions
from shipway.compiler.services import ResolvedService, resolve_services
from shipway.compiler.source import CompiledSource, compile_source, source_revision
from shipway.compiler.tree import GroupNode, RunNode, compile_steps
from shipway.models import PipelineSpec
from shipway.models.durations import parse_duration


@dataclass(frozen=True)
class CompiledPipeline:
    """Everything the planner needs that follows from the spec alone."""

    spec: PipelineSpec
    services: Mapping[str, ResolvedService]
    root: GroupNode
    runs: tuple[RunNode, ...]
    build_tag: str
    timeout: float | None
    source: CompiledSource | None = None
    """Where the workspace's files come from; None: it starts empty."""

    def run(self, step_id: str) -> RunNode:
        return self.runs[int(step_id) - 1]

    @property
    def uses_workspace(self) -> bool:
        """Some service mounts a volume, or there is a source to put somewhere (and build
        from): only then does the pipeline get a claim.

        A pipeline that shares no files needs no storage: no claim to create and bind, and
        its pods can go to any node.
        """
        return self.source is not None or any(s.mounts for s in self.services.values())

    @property
    def pinned(self) -> bool:
        """ReadWriteOnce claims can be attached to one node only: keep every pod there."""
        return self.uses_workspace and "ReadWriteMany" not in self.spec.workspace.accessModes


def _path(loc: tuple[int | str, ...], data: Any, prefix: str) -> str:
    """Turn a pydantic error location into ``spec.services.web.volumes[0]``.

    Union members add their type names to the location; walking the input alongside tells
    real keys from those tags.
    """
    text = prefix
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            text += f"[{part}]"
            node = node[part]
        elif isinstance(part, str) and isinstance(node, Mapping) and part in node:
            text += f".{part}"
            node = node[part]
        elif isinstance(part, str) and part.isidentifier() and isinstance(node, Mapping):
            text += f".{part}"  # a missing required field
            node = None
    return text


def errors_from_pydantic(exc: ValidationError, data: Any, prefix: str = "spec") -> list[FieldError]:
    merged: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        where = _path(tuple(err["loc"]), data, prefix)
        message = err["msg"].removeprefix("Value error, ")
        if message not in merged.setdefault(where, []):
            merged[where].append(message)
    return [FieldError(where, " or ".join(msgs)) for where, msgs in merged.items()]


def parse_spec(raw: Any) -> PipelineSpec:
    """Validate the raw spec against the models; raise InvalidSpecError naming every bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidSpecError.single("spec", "must be an object with services and steps")
    try:
        return PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidSpecError(errors_from_pydantic(exc, raw)) from None


def compile_pipeline(raw: Any, checked_out: str | None = None) -> CompiledPipeline:
    """Parse and check a Pipeline spec completely; raise InvalidSpecError with every problem.

    ``checked_out`` is the branch or tag a checkout found: the build tag when ``spec.ci``
    names none (before the checkout, a git source's ``revision`` unless it is a commit id).
    """
    raise_if_any(structure_errors(raw))  # before anything recursive sees it
    spec = parse_spec(raw)
    services, errors = resolve_services(spec.services)
    errors.extend(name_collisions(spec.services))
    tag = build_tag(spec.ci, checked_out or source_revision(spec.source))
    root, runs, step_errors = compile_steps(
        spec.steps, spec.services, tag, Credentials(secret=spec.dockercfgSecret)
    )
    step_errors += manual_errors(root)
    errors.extend(step_errors)
    source, source_errors = compile_source(spec.source)
    errors.extend(source_errors)
    if spec.source is None:
        # Without a source the workspace starts empty: nothing to build from.
        errors.extend(
            FieldError(
                f"spec.services.{name}.build",
                "a build needs the project's files: set spec.source (a git checkout, or an "
                "upload: shipway run --dir uploads the directory; shipway convert takes "
                "--git-url, --git-remote or --upload)",
            )
            for name, service in spec.services.items()
            if service.build is not None
        )
    if not step_errors:
        builds = [name for name, service in services.items() if service.build is not None]
        errors.extend(status_errors(raw, runs, builds, gates(root)))
    timeout = None
    if spec.timeout is not None:
        try:
            timeout = parse_duration(spec.timeout)
        except ValueError as exc:
            errors.append(FieldError("spec.timeout", str(exc)))
    raise_if_any(sorted(set(errors), key=lambda e: e.field))
    return CompiledPipeline(
        # services and steps live on, resolved, in ``services`` and ``runs``: the models they
        # came from are two thirds of a compiled pipeline's memory.
        spec=spec.model_copy(update={"services": {}, "steps": []}),
        services=services,
        root=root,
        runs=runs,
        build_tag=tag,
        timeout=timeout,
        source=source,
    )
