"""The Pipeline of a run: the Codeship files at the pushed commit, converted by the same
converter as ``shipway run --dir`` (pure: the files come through a reader).

A fork's pull request gets none of the repository's Secrets: no ``codeship.aes`` (so nothing
is decrypted: no environment, no registry credentials) and no push steps.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipway.codeship.convert import SERVICES_FILES, STEPS_FILES, Conversion, Options, convert
from shipway.codeship.issues import ConversionError
from shipway.codeship.yamlfile import FileError, parse_file_text
from shipway.engine.naming import label_value
from shipway.models.repository import RepositorySpec
from shipway.triggers.decide import (
    ANNOTATION_DELIVERY,
    ANNOTATION_FORK,
    LABEL_BRANCH,
    LABEL_REPOSITORY,
    Run,
)
from shipway.triggers.events import Event

Reader = Callable[[str], str | None]
"""A file's text at the commit, or None when it does not exist; OSError when unreadable."""
ANNOTATION_COMMIT = "shipway.dev/commit"
ANNOTATION_BRANCH = "shipway.dev/branch"
ANNOTATION_SUPERSEDED_BY = "shipway.dev/superseded-by"
ANNOTATION_REPORTED = "shipway.dev/reported"


class ForgeFiles:
    """The converter's view of the commit (env and encrypted files), relative to the root."""

    def __init__(self, read: Reader) -> None:
        self.read = read

    @staticmethod
    def _clean(path: str) -> str | None:
        clean = posixpath.normpath(path.lstrip("/") if not path.startswith("/") else path)
        if clean.startswith("/") or clean == ".." or clean.startswith("../"):
            return None
        return clean

    def read_text(self, path: str) -> str:
        clean = self._clean(path)
        text = None if clean is None else self.read(clean)
        if text is None:
            raise FileNotFoundError(path)
        return text

    def has_content(self, path: str) -> bool:
        clean = self._clean(path)
        if clean is None:
            return False
        if clean == ".":
            return True
        try:
            return self.read(clean) is not None
        except OSError:
            return False


@dataclass(frozen=True)
class Failed:
    """The files do not convert: the first line is the commit status, the rest the Event."""

    first_line: str
    message: str


def _first(read: Reader, names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        text = read(name)
        if text is not None:
            return name, text
    return None


def drop_pushes(steps: list[Any]) -> list[Any]:
    """The steps without ``type: push`` (a fork's run pushes nothing); empty groups go too."""
    kept: list[Any] = []
    for step in steps:
        if not isinstance(step, dict):
            kept.append(step)
            continue
        if step.get("type") == "push":
            continue
        if isinstance(step.get("steps"), list):
            inner = drop_pushes(step["steps"])
            if not inner:
                continue
            step = {**step, "steps": inner}
        kept.append(step)
    return kept


ENCRYPTED_KEYS = (
    "encrypted_env_file",
    "encrypted_environment",
    "encrypted_args",
    "encrypted_args_file",
    "encrypted_dockercfg_path",
)


def drop_encrypted(services: Any) -> Any:
    """The services without their encrypted keys: a fork's run decrypts nothing."""
    if not isinstance(services, dict):
        return services
    return {
        name: {k: v for k, v in svc.items() if k not in ENCRYPTED_KEYS}
        if isinstance(svc, dict)
        else svc
        for name, svc in services.items()
    }


_FILE_KEYS = ("env_file", "encrypted_env_file", "encrypted_dockercfg_path")


def _paths(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def named_files(services: Any, steps: Any) -> list[str]:
    """The files the converter will read besides the two Codeship files (env files,
    encrypted files), as :class:`ForgeFiles` asks for them: a hint for reading them together
    beforehand, so a wrong guess costs a read, never a result."""
    found: list[str] = []
    bodies = list(services.values()) if isinstance(services, dict) else []
    stack = list(steps) if isinstance(steps, list) else []
    while stack:
        step = stack.pop()
        if isinstance(step, dict):
            bodies.append(step)
            inner = step.get("steps")
            stack.extend(inner if isinstance(inner, list) else [])
    for body in bodies:
        if not isinstance(body, dict):
            continue
        for key in _FILE_KEYS:
            found += _paths(body.get(key))
        build = body.get("build")
        if isinstance(build, dict):
            found += _paths(build.get("encrypted_args_file"))
    cleaned = (ForgeFiles._clean(path) for path in found)
    return list(dict.fromkeys(c for c in cleaned if c is not None and c != "."))


def build(
    spec: RepositorySpec,
    repository: str,
    namespace: str,
    event: Event,
    *,
    run: Run,
    read: Reader,
    aes_key: bytes | None,
    prefetch: Callable[[list[str]], None] | None = None,
) -> Conversion | Failed:
    """Read and convert the files at ``event.commit``; the Pipeline, or why not."""
    try:
        services = _first(read, SERVICES_FILES)
        steps = _first(read, STEPS_FILES)
    except OSError as exc:
        return Failed(f"cannot read the Codeship files: {exc}", str(exc))
    if services is None or steps is None:
        missing = SERVICES_FILES[0] if services is None else STEPS_FILES[0]
        line = f"no {missing} at {event.commit[:12]}"
        return Failed(line, line)
    git: dict[str, Any] = {"url": spec.url, "revision": event.commit}
    if spec.cloneSecretName:
        git["secretName"] = spec.cloneSecretName
    options = Options(
        name=run.name,
        namespace=namespace,
        ci=run.ci,
        aes_key=None if run.fork else aes_key,
        source={"git": git},
    )
    try:
        services_doc = parse_file_text(services[1], services[0])
        steps_doc = parse_file_text(steps[1], steps[0])
        if run.fork:
            services_doc = drop_encrypted(services_doc)
            if isinstance(steps_doc, list):
                steps_doc = drop_pushes(steps_doc)
        if prefetch is not None:
            prefetch(named_files(services_doc, steps_doc))
        conversion = convert(
            services_doc,
            steps_doc,
            services_source=services[0],
            steps_source=steps[0],
            options=options,
            files=ForgeFiles(read),
        )
    except FileError as exc:
        return Failed(str(exc).splitlines()[0], str(exc))
    except ConversionError as exc:
        lines = [str(e) for e in exc.errors]
        if run.fork and aes_key is not None:
            lines.append("(a fork's pull request runs without the repository's Secrets)")
        return Failed(lines[0] if lines else "the Codeship files do not convert", "\n".join(lines))
    manifest = conversion.manifest
    meta = manifest["metadata"]
    meta["labels"] = {
        LABEL_REPOSITORY: label_value(repository),
        LABEL_BRANCH: label_value(run.branch_key),
    }
    meta["annotations"] = {
        ANNOTATION_COMMIT: event.commit,
        ANNOTATION_BRANCH: run.branch_key,
        ANNOTATION_DELIVERY: event.delivery[:253],
        ANNOTATION_FORK: "true" if run.fork else "false",
    }
    if spec.serviceAccountName:
        manifest["spec"]["serviceAccountName"] = spec.serviceAccountName
    return conversion
