"""A service's ``build`` checked and resolved: paths inside the checkout, args as templates.

Paths are names inside the checkout, as volumes' host paths are: an absolute path or one that
climbs out of the checkout is refused here, before anything runs. (Symlinks inside the
checkout are checked by the build pod itself, which resolves them before BuildKit reads.)
Arg values are Codeship's templates (``CI: "{{ .Ci }}"``): parsed here, so a bad one is an
error naming its field; rendered when the build pod is made (:mod:`shipway.engine.plan.builds.args`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shipway.compiler.errors import FieldError
from shipway.compiler.templates import Template, TemplateError, literal, parse
from shipway.models import Build, Service

DEFAULT_DOCKERFILE = "Dockerfile"
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ResolvedBuild:
    """What the build pod needs, decided from the spec alone."""

    service: str
    context: str
    """Folder of the checkout sent as the build context; "." is its root."""
    dockerfile_dir: str
    """Folder of the checkout holding the Dockerfile."""
    dockerfile_name: str
    args: tuple[tuple[str, Template], ...] = ()
    """(name, value): a value without ``{{`` is a literal template."""
    secret_sources: tuple[str, ...] = ()
    """Secrets whose keys become BuildKit secrets."""
    target: str | None = None
    image_name: str | None = None
    """Codeship's name for the image (build.image, else the service's image)."""
    cached: bool = False
    default_cache_branch: str | None = None


def _inside(
    path: str, where: str, what: str, shown: str | None = None
) -> tuple[str | None, FieldError | None]:
    """``path`` normalised inside the checkout, or the error saying why it is not."""
    shown = shown or repr(path)
    if "\x00" in path:
        return None, FieldError(where, f"{what} contains a NUL byte")
    if path.startswith(("/", "~")):
        return None, FieldError(
            where,
            f"{shown}: absolute paths are not allowed; use a path relative to the checkout, "
            "e.g. ./app",
        )
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        return None, FieldError(where, f"{shown}: the {what} is outside the checkout")
    return normal, None


def _one_of(build: Build, new: str, old: str, where: str) -> tuple[str | None, list[FieldError]]:
    """Codeship's two spellings of one key: either, or both when they agree."""
    value_new, value_old = getattr(build, new), getattr(build, old)
    if value_new is not None and value_old is not None and value_new != value_old:
        return value_new, [
            FieldError(f"{where}.{old}", f"{old} is the old spelling of {new}: set only {new}")
        ]
    return value_new if value_new is not None else value_old, []


def _scalar(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    return None


def arg_template(text: str, where: str) -> tuple[Template | None, FieldError | None]:
    """A value with ``{{`` is a template (Codeship renders every arg); others stay literal."""
    if "{{" not in text:
        return literal(text), None
    try:
        return parse(text), None
    except TemplateError as exc:
        return None, FieldError(where, f"{text}: {exc}")


def parse_args(
    value: Mapping[str, object] | list[str] | None, where: str
) -> tuple[tuple[tuple[str, Template], ...], list[FieldError]]:
    """Build args from a map or a KEY=VALUE list, in order, each value parsed as a template."""
    pairs: list[tuple[str, str, str]] = []
    """(name, value, its field)."""
    errors: list[FieldError] = []
    if value is None:
        return (), errors
    if isinstance(value, Mapping):
        for key, raw in value.items():
            text = _scalar(raw)
            if text is None:
                errors.append(FieldError(f"{where}.{key}", "must be a string, number or boolean"))
            else:
                pairs.append((key, text, f"{where}.{key}"))
    else:
        for index, entry in enumerate(value):
            key, sep, text = entry.partition("=")
            if not sep:
                errors.append(FieldError(f"{where}[{index}]", f"{entry!r}: expected KEY=VALUE"))
                continue
            pairs.append((key, text, f"{where}[{index}]"))
    parsed: list[tuple[str, Template]] = []
    for key, text, field in pairs:
        if not _ARG_NAME.fullmatch(key):
            errors.append(FieldError(where, f"{key!r} is not a valid build arg name"))
        template, error = arg_template(text, field)
        if template is None:
            errors += [error] if error else []
        else:
            parsed.append((key, template))
    return tuple(parsed), errors


def resolve_build(name: str, service: Service) -> tuple[ResolvedBuild | None, list[FieldError]]:
    """The service's build, or None when it has none; every error with its field."""
    if service.build is None:
        return None, []
    where = f"spec.services.{name}.build"
    build = Build(context=service.build) if isinstance(service.build, str) else service.build
    errors: list[FieldError] = []
    context_raw, found = _one_of(build, "context", "path", where)
    errors += found
    dockerfile_raw, found = _one_of(build, "dockerfile", "dockerfile_path", where)
    errors += found
    context_field = where if isinstance(service.build, str) else f"{where}.context"
    context, error = _inside(context_raw or ".", context_field, "build context")
    errors += [error] if error else []
    dockerfile = None
    if context is not None:
        relative = dockerfile_raw or DEFAULT_DOCKERFILE
        shown = repr(relative) + (f" in context {context!r}" if context != "." else "")
        joined = posixpath.join(context, relative)
        dockerfile, error = _inside(joined, f"{where}.dockerfile", "Dockerfile", shown)
        if dockerfile_raw is not None and dockerfile_raw.startswith(("/", "~")):
            error = FieldError(
                f"{where}.dockerfile",
                f"{dockerfile_raw!r}: the Dockerfile is a path relative to the build context",
            )
        errors += [error] if error else []
        if dockerfile is not None and dockerfile in (".", context):
            errors.append(FieldError(f"{where}.dockerfile", "names a folder, not a file"))
    args, arg_errors = parse_args(build.args, f"{where}.args")
    errors += arg_errors
    if build.target is not None and not _TARGET.fullmatch(build.target):
        errors.append(FieldError(f"{where}.target", f"{build.target!r} is not a stage name"))
    if errors or context is None or dockerfile is None:
        return None, errors
    return (
        ResolvedBuild(
            service=name,
            context=context,
            dockerfile_dir=posixpath.dirname(dockerfile) or ".",
            dockerfile_name=posixpath.basename(dockerfile),
            args=args,
            secret_sources=tuple(source.secretRef.name for source in build.argsFrom),
            target=build.target,
            image_name=build.image or service.image,
            cached=bool(service.cached),
            default_cache_branch=service.default_cache_branch,
        ),
        [],
    )
