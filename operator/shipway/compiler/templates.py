"""Codeship's templates (``image_tag: "{{ .Branch }}-{{ .ShortCommitID }}"``), pure.

Codeship renders ``image_tag`` and build ``args`` values as a Go ``text/template`` over a
fixed set of build values (and strips from a tag what a Docker tag cannot hold). Shipway
supports the form every documented example uses, ``{{ .Name }}`` (with Go's ``{{-``/``-}}``
space trimming and ``{{/* comments */}}``); functions, pipelines and control actions are
refused at validation, as is an unknown name, so a template that could not render never
reaches a pod.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

CODESHIP_VARIABLES: dict[str, str] = {
    "ProjectID": "CI_PROJECT_ID",
    "BuildID": "CI_BUILD_ID",
    "RepoName": "CI_REPO_NAME",
    "Branch": "CI_BRANCH",
    "CommitID": "CI_COMMIT_ID",
    "CommitMessage": "CI_COMMIT_MESSAGE",
    "CommitDescription": "CI_COMMIT_DESCRIPTION",
    "CommitterName": "CI_COMMITTER_NAME",
    "CommitterEmail": "CI_COMMITTER_EMAIL",
    "CommitterUsername": "CI_COMMITTER_USERNAME",
    "Time": "",
    "Timestamp": "CI_TIMESTAMP",
    "StringTime": "CI_STRING_TIME",
    "StepName": "",
    "ServiceName": "",
    "ImageName": "",
    "Ci": "CI",
    "CiName": "CI_NAME",
}
"""Codeship's documented variables, with the CI_* variable each mirrors ("" when none)."""

SHIPWAY_VARIABLES: dict[str, str] = {
    "ShortCommitID": "the first 7 characters of CommitID",
    "Ref": "the build tag: spec.ci.tag, else the branch (what tag/exclude filters match)",
}
"""Shipway's additions (not Codeship's): documented in docs/push.md."""

VARIABLES = (*CODESHIP_VARIABLES, *SHIPWAY_VARIABLES)
SHORT_COMMIT = 7
MAX_TAG = 128
_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_VARIABLE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_NOT_TAG = re.compile(r"[^A-Za-z0-9_.-]+")


class TemplateError(ValueError):
    """The template cannot be rendered; the message says which part and why."""


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and variable names, in order."""

    source: str
    parts: tuple[tuple[bool, str], ...]
    """(is_variable, text or name)."""

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(text for var, text in self.parts if var))


def parse(source: str) -> Template:
    """Parse ``source``; raise TemplateError for anything but text and ``{{ .Name }}``."""
    parts: list[tuple[bool, str]] = []
    position = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        if "}}" in text:
            raise TemplateError(f"unexpected '}}}}' in {text!r}")
        parts.append((False, text))
        body = match.group(2).strip()
        trim_next = bool(match.group(3))
        position = match.end()
        if _COMMENT.fullmatch(body):
            continue
        variable = _VARIABLE.fullmatch(body)
        if variable is None:
            raise TemplateError(
                f"{{{{{match.group(2)}}}}}: only {{{{ .Name }}}} of a build value is supported "
                "(no functions, pipelines or control actions)"
            )
        name = variable.group(1)
        if name not in VARIABLES:
            raise TemplateError(
                f"unknown variable .{name}; known: {', '.join('.' + v for v in VARIABLES)}"
            )
        parts.append((True, name))
    rest = source[position:]
    if trim_next:
        rest = rest.lstrip()
    if "{{" in rest or "}}" in rest:
        raise TemplateError(f"unclosed or stray braces in {rest!r}")
    parts.append((False, rest))
    return Template(source, tuple((var, text) for var, text in parts if var or text))


def literal(text: str) -> Template:
    """``text`` as it is, braces and all (a build arg without ``{{``)."""
    return Template(text, ((False, text),) if text else ())


def go_time(moment: datetime) -> str:
    """Go's ``time.Time.String()`` (what ``{{ .Time }}`` prints), in UTC."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def values_from(
    ci_environment: Mapping[str, str],
    *,
    build_tag: str,
    step_name: str,
    service: str,
    image_name: str,
    created: datetime | None,
) -> dict[str, str]:
    """Every variable's value from a step's CI_* variables and the push step itself."""
    values = {
        name: ci_environment.get(variable, "")
        for name, variable in CODESHIP_VARIABLES.items()
        if variable
    }
    values.update(
        Time=go_time(created) if created else "",
        StepName=step_name,
        ServiceName=service,
        ImageName=image_name,
        ShortCommitID=values["CommitID"][:SHORT_COMMIT],
        Ref=build_tag,
    )
    return values


def render(template: Template, values: Mapping[str, str], *, allow_empty: bool = False) -> str:
    """The text; TemplateError when a variable it uses has no value in this build.

    ``allow_empty``: an empty value renders as "" (build args: Codeship renders what jet
    lacks as empty), where a tag refuses it (an empty part would change what it names).
    """
    empty = [name for name in template.variables if not values.get(name)]
    if empty and not allow_empty:
        raise TemplateError(
            f"{', '.join('.' + n for n in empty)} {'is' if len(empty) == 1 else 'are'} empty in "
            "this build (set spec.ci or spec.source so the value is known)"
        )
    return "".join(values.get(text, "") if var else text for var, text in template.parts)


def as_tag(text: str) -> str:
    """Codeship's rule: characters a Docker tag cannot hold are stripped (at most 128 kept)."""
    return _NOT_TAG.sub("", text).lstrip(".-")[:MAX_TAG]
