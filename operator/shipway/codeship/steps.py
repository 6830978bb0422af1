"""codeship-steps.yml (or .json) → ``spec.steps``.

Group-level ``services`` fans the group's steps out over several services. Codeship documents it
through two "logically equivalent" examples, which this follows exactly: every service gets a
serial group with a copy of the steps, and these groups run side by side in a parallel group
and one after the other in a serial group. (The prose next to the examples says the services of
a serial group run in parallel; the example shows them one after the other.)
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from shipway.codeship.dockercfg import Dockercfgs
from shipway.codeship.issues import WarningKind
from shipway.codeship.keys import PUSH_STEP_KEYS, STEP_KEYS, STEP_TYPES, Handling
from shipway.codeship.report import (
    Report,
    command_value,
    join,
    scalar_text,
    string_list,
    type_name,
)

PLACEHOLDER_SERVICE = "shipway-placeholder"
"""Stands in, only while checking a conversion that already has errors, for a step or service
that could not be converted: the compiler then checks the rest in the same pass."""
KEEP_EMPTY = frozenset({"name", "service", "type", "steps", "services", "image_name"})
"""Keys whose empty value is an error; any other key written without a value is none."""
GROUP_ONLY = ("steps", "services")
GROUPS = ("serial", "parallel", "manual")
MATRIX = "matrix"
PUSH = "push"
RUN_ONLY = ("command",)


@dataclass(frozen=True)
class _Scope:
    """What the enclosing groups decided for the steps inside them."""

    group_service: str | None = None
    """Where the enclosing group that set service/services is (steps there may not set one)."""
    has_service: bool = False


class StepConverter:
    def __init__(
        self,
        source: str,
        services: Collection[str],
        report: Report,
        dockercfgs: Dockercfgs | None = None,
    ) -> None:
        self.source = source
        self.services = services
        self.report = report
        self.dockercfgs = dockercfgs or Dockercfgs(report, lambda path: "")
        self.fanned_out = False
        """Whether a ``services`` fan-out changed the shape (spec paths then differ)."""
        self.failed: list[str] = []
        """Where steps that could not be converted are (each holds a placeholder)."""

    def error(self, where: str, message: str) -> None:
        self.report.error(self.source, where, message)

    def convert(self, doc: Any) -> list[dict[str, Any]]:
        if doc is None:
            self.error("", "the file is empty: it needs at least one step")
            return []
        if not isinstance(doc, list):
            self.error("", f"must be a list of steps, not {type_name(doc)}")
            return []
        if not doc:
            self.error("", "the list of steps is empty")
            return []
        return self._list(doc, "", _Scope())

    def _list(self, items: list[Any], where: str, scope: _Scope) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            at = join(where, index) if where else f"[{index}]"
            step = self._step(item, at, scope)
            if step is None:  # an error is reported: keep the place, for the compiler's check
                self.failed.append(at)
                step = {"service": PLACEHOLDER_SERVICE}
            result.append(step)
        return result

    def _step(self, item: Any, where: str, scope: _Scope) -> dict[str, Any] | None:
        if not isinstance(item, dict):
            self.error(where, f"a step must be a map of keys, not {type_name(item)}")
            return None
        item = {k: v for k, v in item.items() if v is not None or k in KEEP_EMPTY}
        kind: str | None = None
        if "type" in item:
            kind = scalar_text(self.report, self.source, join(where, "type"), item["type"])
            if kind is None:
                return None
            rule = STEP_TYPES.get(kind)
            if rule is None:
                self.error(join(where, "type"), f"unknown type {kind!r} (use serial or parallel)")
                return None
            if rule.handling is Handling.ERROR:
                self.error(join(where, "type"), f"type: {kind}: {rule.note}")
                return None
            if kind == MATRIX:
                kind = self._matrix(item, where)
                if kind is None:
                    return None
        errors_before = len(self.report.errors)
        group = kind in GROUPS
        for key in list(item):
            rule = STEP_KEYS.get(str(key))
            at = join(where, str(key))
            ignored = self._misplaced(str(key), kind)
            if rule is None:
                self.report.unknown_key(self.source, at, str(key), known=STEP_KEYS)
            elif rule.handling is Handling.IGNORED:
                self.report.warn(self.source, at, f"ignored: {rule.note}", WarningKind.IGNORED)
            elif not group and key in GROUP_ONLY:
                self.error(at, f"{key} is set on groups (add type: serial or type: parallel)")
            elif ignored is not None:
                self.report.warn(self.source, at, f"ignored: {ignored}", WarningKind.IGNORED)
            else:
                continue
            del item[key]
        if len(self.report.errors) > errors_before:
            return None
        out: dict[str, Any] = {}
        if "name" in item:
            name = scalar_text(self.report, self.source, join(where, "name"), item["name"])
            if name is not None:
                out["name"] = name
        if kind is not None:
            out["type"] = kind
        service = self._service(item, where, scope)
        if service is not None:
            out["service"] = service
        if "command" in item:
            command = command_value(
                self.report, self.source, join(where, "command"), item["command"]
            )
            if command is not None:
                out["command"] = command
        for key in ("tag", "exclude", "timeout", *(PUSH_STEP_KEYS if kind == PUSH else ())):
            if key in item:
                text = scalar_text(self.report, self.source, join(where, key), item[key])
                if text is not None:
                    out[key] = text
        if kind == PUSH and "image_name" not in item:
            self.error(join(where, "image_name"), "a push step needs image_name")
        elif kind == PUSH and "image_name" in out:
            self._tagged_image_name(out, where)
        out.update(self._credentials(item, where, kind))
        if "retries" in item:
            retries = item["retries"]
            if isinstance(retries, int) and not isinstance(retries, bool):
                out["retries"] = int(retries)
            else:
                self.error(join(where, "retries"), "must be a number")
        if group:
            steps = self._group_steps(item, where, scope, service)
            if steps is not None:
                out["steps"] = steps
        elif not (service or scope.has_service):
            what = "push" if kind == PUSH else "run"
            self.error(where, f"a {what} step needs a service (on the step or its group)")
        if "on_fail" in item:
            on_fail = item["on_fail"]
            if isinstance(on_fail, list) and on_fail:
                out["on_fail"] = self._list(
                    on_fail, join(where, "on_fail"), _Scope(has_service=True)
                )
            else:
                self.error(join(where, "on_fail"), "must be a non-empty list of steps")
        return out

    @staticmethod
    def _misplaced(key: str, kind: str | None) -> str | None:
        """Why a key Codeship accepted here has no effect, or None where it has one."""
        if kind in GROUPS and key in RUN_ONLY:
            return f"a group (type: {kind}) runs no command of its own: no effect, as on Codeship"
        if kind == PUSH and key in RUN_ONLY:
            return "a push step runs no command (it pushes its service's image): no effect"
        if kind != PUSH and key in PUSH_STEP_KEYS:
            return f"{key} is a key of push steps (type: push): no effect here, as on Codeship"
        return None

    def _tagged_image_name(self, out: dict[str, Any], where: str) -> None:
        """``image_name: repo:tag`` (Codeship pushed that tag): the tag becomes image_tag,
        unless image_tag is set, which wins."""
        name = out["image_name"]
        last = name.rsplit("/", 1)[-1]
        if ":" not in last or "@" in name:
            return
        repository, _, tag = name.rpartition(":")
        out["image_name"] = repository
        at = join(where, "image_name")
        if "image_tag" in out:
            self.report.warn(
                self.source,
                at,
                f"the tag {tag!r} in image_name gives way to image_tag {out['image_tag']!r}; "
                f"pushes to {repository}",
            )
            return
        out["image_tag"] = tag
        self.report.warn(
            self.source, at, f"pushes {repository} with the tag {tag!r} (as image_tag: {tag})"
        )

    def _credentials(self, item: dict[str, Any], where: str, kind: str | None) -> dict[str, str]:
        """``encrypted_dockercfg_path`` → dockercfgSecret; ``dockercfg_service`` kept where
        Shipway runs it (push steps and groups), Codeship's precedence between the two."""
        path_key, service_key = "encrypted_dockercfg_path", "dockercfg_service"
        out: dict[str, str] = {}
        if path_key in item:
            at = join(where, path_key)
            path = scalar_text(self.report, self.source, at, item[path_key])
            if path is not None:
                secret = self.dockercfgs.secret_for(path, self.source, at)
                if secret is not None:
                    out["dockercfgSecret"] = secret
        if service_key not in item:
            return out
        at = join(where, service_key)
        service = scalar_text(self.report, self.source, at, item[service_key])
        if service is None:
            return out
        if path_key in item:
            self.report.warn(
                self.source,
                at,
                f"ignored: {path_key} takes precedence over it, as on Codeship",
                WarningKind.IGNORED,
            )
        elif kind != PUSH and not _has_push(item):
            self.report.warn(
                self.source,
                at,
                f"ignored on {'a run step' if kind is None else 'a group of run steps'}: pods "
                "pull with a Secret (encrypted_dockercfg_path, or --dockercfg-secret), not with "
                "credentials a service writes at run time",
                WarningKind.IGNORED,
            )
        elif self.dockercfgs.named is not None:
            out["dockercfgSecret"] = self.dockercfgs.named
            self.report.warn(
                self.source,
                at,
                f"replaced by Secret {self.dockercfgs.named!r} (--dockercfg-secret)",
            )
        elif service not in self.services:
            self.error(at, f"unknown service {service!r}")
        else:
            out[service_key] = service
        return out

    def _matrix(self, item: dict[str, Any], where: str) -> str | None:
        """``type: matrix`` (examples 05, 06): the old spelling of a parallel fan-out."""
        if "services" not in item:
            self.error(
                join(where, "type"),
                "type: matrix runs its steps once per service: it needs services: [..]",
            )
            return None
        self.report.warn(
            self.source,
            join(where, "type"),
            f"deprecated: {STEP_TYPES[MATRIX].note}",
            WarningKind.DEPRECATED,
        )
        return "parallel"

    def _service(self, item: dict[str, Any], where: str, scope: _Scope) -> str | None:
        if "service" not in item:
            return None
        at = join(where, "service")
        service = scalar_text(self.report, self.source, at, item["service"])
        if service is None:
            return None
        if "services" in item:
            self.error(at, "set service or services, not both")
        elif scope.group_service is not None:
            self.error(
                at,
                f"the group at {scope.group_service} sets the service of its steps; Codeship "
                "does not allow a step to set its own",
            )
        elif service not in self.services:
            self.error(at, f"unknown service {service!r}")
        return service

    def _group_steps(
        self, item: dict[str, Any], where: str, scope: _Scope, service: str | None
    ) -> list[dict[str, Any]] | None:
        steps = item.get("steps")
        at = join(where, "steps")
        if not isinstance(steps, list) or not steps:
            self.error(at, "a group needs a non-empty list of steps")
            return None
        fan_out: list[str] | None = None
        if "services" in item:
            fan_out = string_list(
                self.report, self.source, join(where, "services"), item["services"]
            )
            if fan_out is not None and not fan_out:
                self.error(join(where, "services"), "must name at least one service")
                fan_out = None
            for index, name in enumerate(fan_out or ()):
                if name not in self.services:
                    self.error(join(join(where, "services"), index), f"unknown service {name!r}")
        sets_service = service is not None or fan_out is not None
        inner = _Scope(
            group_service=where if sets_service else scope.group_service,
            has_service=sets_service or scope.has_service,
        )
        children = self._list(steps, at, inner)
        if not fan_out:
            return children
        if len(fan_out) == 1:
            return [
                {"type": "serial", "name": fan_out[0], "service": fan_out[0], "steps": children}
            ]
        self.fanned_out = True
        return [
            {
                "type": "serial",
                "name": name,
                "service": name,
                "steps": [_renamed(copy.deepcopy(child), name) for child in children],
            }
            for name in fan_out
        ]


def _has_push(item: Any) -> bool:
    """Some step below (or at) ``item`` is a push step."""
    if not isinstance(item, dict):
        return False
    if item.get("type") == PUSH:
        return True
    children: list[Any] = []
    for key in ("steps", "on_fail"):
        value = item.get(key)
        if isinstance(value, list):
            children += value
    return any(_has_push(child) for child in children)


def _renamed(step: dict[str, Any], service: str) -> dict[str, Any]:
    """A fanned-out copy: run step names get the service, so names stay unique."""
    if step.get("type") in (None, "push") and "name" in step:
        step["name"] = f"{step['name']} ({service})"
    for key in ("steps", "on_fail"):
        for child in step.get(key, ()):
            _renamed(child, service)
    return step
