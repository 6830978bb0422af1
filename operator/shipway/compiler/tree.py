"""The step tree compiled from ``spec.steps``: ids, names, services and filters decided once.

Run steps are numbered in document order (a step's ``on_fail`` steps right after it); the
number is the step's identity in pod names, labels and status, so it never changes for a
given spec (and the spec is immutable).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from shipway.compiler.commands import display_command, split_command
from shipway.compiler.errors import FieldError
from shipway.compiler.filters import pattern_error, selected
from shipway.compiler.limits import MAX_DEPTH
from shipway.compiler.push import (
    Credentials,
    ResolvedPush,
    credential_errors,
    non_push_errors,
    resolve_push,
)
from shipway.models import Service, Step
from shipway.models.durations import parse_duration

MAX_RUN_STEPS = 1000
GROUP_TYPES = ("serial", "parallel", "manual")
_NAME_LIMIT = 128


@dataclass(frozen=True)
class RunNode:
    """A step that runs one command in one pod (or, with ``push``, pushes an image)."""

    id: str
    name: str
    group: str | None
    service: str
    command: tuple[str, ...] | None
    enabled: bool
    timeout: float | None
    retries: int
    on_fail: tuple[Node, ...]
    on_fail_of: str | None
    field: str
    push: ResolvedPush | None = None
    pull_secret: str | None = None
    """The dockercfgSecret its pod pulls images with (run steps)."""


@dataclass(frozen=True)
class GroupNode:
    """A serial or parallel group of steps, or a manual one (serial, after an approval)."""

    kind: Literal["serial", "parallel", "manual"]
    name: str
    group: str | None
    children: tuple[Node, ...]
    enabled: bool
    on_fail: tuple[Node, ...]
    on_fail_of: str | None
    field: str


Node = RunNode | GroupNode


def walk(nodes: Sequence[Node]) -> Iterator[RunNode]:
    """Every run step below ``nodes``, on_fail steps included, in id order."""
    for node in nodes:
        if isinstance(node, RunNode):
            yield node
            yield from walk(node.on_fail)
        else:
            yield from walk(node.children)
            yield from walk(node.on_fail)


def _explicit_names(steps: Sequence[Step], seen: set[str]) -> None:
    """Every name a run step was given: generated names stay clear of them.

    Given names may repeat (Codeship allows it, e.g. a ``deploy`` step in two groups that run
    on different branches): a step is known by its id, in pod names, labels and status.
    """
    for step in steps:
        if step.name is not None and step.type not in GROUP_TYPES:
            seen.add(step.name)
        _explicit_names(step.steps or (), seen)
        _explicit_names(step.on_fail or (), seen)


class _Compiler:
    def __init__(self, services: Mapping[str, Service], build_tag: str, used: set[str]) -> None:
        self.services = services
        self.build_tag = build_tag
        self.used = used
        self.errors: list[FieldError] = []
        self.count = 0

    def _unique_name(self, wanted: str) -> str:
        base = wanted[:_NAME_LIMIT] or "step"
        name, n = base, 2
        while name in self.used:
            name = f"{base} ({n})"
            n += 1
        self.used.add(name)
        return name

    def _filter(self, step: Step, field: str, parent: bool) -> bool:
        for key in ("tag", "exclude"):
            pattern = getattr(step, key)
            if pattern is not None and (problem := pattern_error(pattern)):
                self.errors.append(FieldError(f"{field}.{key}", problem))
        try:
            return parent and selected(step.tag, step.exclude, self.build_tag)
        except Exception:  # an invalid regex, already reported above
            return False

    def _timeout(self, step: Step, field: str) -> float | None:
        if step.timeout is None:
            return None
        try:
            return parse_duration(step.timeout)
        except ValueError as exc:
            self.errors.append(FieldError(f"{field}.timeout", str(exc)))
            return None

    def build(
        self,
        steps: Sequence[Step],
        where: str,
        group: str | None,
        *,
        service: str | None,
        enabled: bool,
        on_fail_of: str | None,
        depth: int,
        creds: Credentials,
    ) -> tuple[Node, ...]:
        if depth > MAX_DEPTH and steps:  # limits.structure_errors refuses this first
            self.errors.append(FieldError(where, f"steps nest deeper than {MAX_DEPTH} levels"))
            return ()
        nodes: list[Node] = []
        for index, step in enumerate(steps):
            field = f"{where}[{index}]"
            on = self._filter(step, field, enabled)
            self.errors += credential_errors(step, field, self.services)
            inner = creds.under(step)
            if step.type in GROUP_TYPES:
                self.errors += non_push_errors(step, field)
                nodes.append(
                    self._group(
                        step,
                        field,
                        index,
                        group=group,
                        service=service,
                        enabled=on,
                        on_fail_of=on_fail_of,
                        depth=depth,
                        creds=inner,
                    )
                )
            else:
                node = self._run(
                    step,
                    field,
                    group,
                    service=service,
                    enabled=on,
                    on_fail_of=on_fail_of,
                    depth=depth,
                    creds=inner,
                )
                if node is not None:
                    nodes.append(node)
        return tuple(nodes)

    def _group(
        self,
        step: Step,
        field: str,
        index: int,
        *,
        group: str | None,
        service: str | None,
        enabled: bool,
        on_fail_of: str | None,
        depth: int,
        creds: Credentials,
    ) -> GroupNode:
        assert step.type == "serial" or step.type == "parallel" or step.type == "manual"
        own_service = self._service(step.service, f"{field}.service", required=False) or service
        label = step.name or f"{step.type}-{index + 1}"
        path = f"{group}/{label}" if group else label
        if step.command is not None:
            self.errors.append(FieldError(f"{field}.command", "a group cannot have a command"))
        if step.retries is not None:
            self.errors.append(
                FieldError(f"{field}.retries", "retries is set on run steps (and push steps)")
            )
        if not step.steps:
            self.errors.append(FieldError(f"{field}.steps", "a group needs at least one step"))

        def nested(steps: Sequence[Step] | None, key: str, fail_of: str | None) -> tuple[Node, ...]:
            return self.build(
                steps or (),
                f"{field}.{key}",
                path,
                service=own_service,
                enabled=enabled,
                on_fail_of=fail_of,
                depth=depth + 1,
                creds=creds,
            )

        children = nested(step.steps, "steps", on_fail_of)
        on_fail = nested(step.on_fail, "on_fail", path)
        return GroupNode(
            kind=step.type,
            name=label,
            group=group,
            children=children,
            enabled=enabled,
            on_fail=on_fail,
            on_fail_of=on_fail_of,
            field=field,
        )

    def _service(self, name: str | None, field: str, *, required: bool) -> str | None:
        if name is None:
            if required:
                self.errors.append(
                    FieldError(field, "a run step needs a service (on the step or its group)")
                )
            return None
        if name not in self.services:
            self.errors.append(FieldError(field, f"unknown service {name!r}"))
            return None
        return name

    def _run(
        self,
        step: Step,
        field: str,
        group: str | None,
        *,
        service: str | None,
        enabled: bool,
        on_fail_of: str | None,
        depth: int,
        creds: Credentials,
    ) -> RunNode | None:
        if step.steps is not None:
            self.errors.append(
                FieldError(f"{field}.type", "a step with steps needs type serial or parallel")
            )
        chosen = step.service if step.service is not None else service
        resolved = self._service(chosen, f"{field}.service", required=True)
        push: ResolvedPush | None = None
        if step.type == "push":
            push, push_errors = resolve_push(
                step, field, resolved, self.services, credentials=creds
            )
            self.errors += push_errors
        else:
            self.errors += non_push_errors(step, field)
        try:
            command = split_command(step.command)
        except ValueError as exc:
            self.errors.append(FieldError(f"{field}.command", str(exc)))
            command = None
        self.count += 1
        step_id = str(self.count)
        if step.name is not None:
            name = step.name
        elif step.type == "push":
            name = self._unique_name(f"push {step.image_name or chosen or 'image'}")
        else:
            wanted = display_command(command) if command else f"{chosen or 'step'}"
            name = self._unique_name(wanted)
        timeout = self._timeout(step, field)
        on_fail = self.build(
            step.on_fail or (),
            f"{field}.on_fail",
            group,
            service=chosen,
            enabled=enabled,
            on_fail_of=step_id,
            depth=depth + 1,
            creds=creds,
        )
        if resolved is None or (step.type == "push" and push is None):
            return None
        return RunNode(
            id=step_id,
            name=name,
            group=group,
            service=resolved,
            command=command,
            enabled=enabled,
            timeout=timeout,
            retries=step.retries or 0,
            on_fail=on_fail,
            on_fail_of=on_fail_of,
            field=field,
            push=push,
            pull_secret=None if push is not None else creds.secret,
        )


def compile_steps(
    steps: Sequence[Step],
    services: Mapping[str, Service],
    build_tag: str,
    credentials: Credentials | None = None,
) -> tuple[GroupNode, tuple[RunNode, ...], list[FieldError]]:
    """The root (serial) group, every run step in id order, and every error found.

    ``credentials``: the pipeline's own (``spec.dockercfgSecret``), inherited by every step.
    """
    seen: set[str] = set()
    _explicit_names(steps, seen)
    errors: list[FieldError] = []
    compiler = _Compiler(services, build_tag, seen)
    children = compiler.build(
        steps,
        "spec.steps",
        None,
        service=None,
        enabled=True,
        on_fail_of=None,
        depth=1,
        creds=credentials or Credentials(),
    )
    errors += compiler.errors
    if compiler.count > MAX_RUN_STEPS:
        errors.append(
            FieldError("spec.steps", f"{compiler.count} run steps; at most {MAX_RUN_STEPS}")
        )
    root = GroupNode("serial", "", None, children, True, (), None, "spec.steps")
    return root, tuple(walk(children)), errors
