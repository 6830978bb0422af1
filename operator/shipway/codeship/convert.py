"""Codeship's two files → one Pipeline manifest, checked by the operator's own compiler."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipway import GROUP, KIND, VERSION
from shipway.codeship.dockercfg import Dockercfgs
from shipway.codeship.issues import ConversionError, ConversionWarning
from shipway.codeship.jetcrypt import JetCryptError, parse_key
from shipway.codeship.report import Report
from shipway.codeship.services import NoFiles, ProjectFiles, ServiceOptions, convert_services
from shipway.codeship.steps import PLACEHOLDER_SERVICE, StepConverter
from shipway.codeship.yamlfile import FileError, parse_file_text
from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.pipeline import compile_pipeline
from shipway.engine.naming import dns_label
from shipway.models import CIContext
from shipway.models.spec import SERVICE_NAME_PATTERN

AES_KEY_FILE = "codeship.aes"
SERVICES_FILES = ("codeship-services.yml", "docker-compose.yml")
STEPS_FILES = ("codeship-steps.yml", "codeship-steps.json")
PIPELINE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_NAME = 63
GENERATE_SUFFIX = 5
"""Characters the API server appends to a generateName."""
CI_FIELDS = tuple(CIContext.model_fields)
COMMAND_LINE_STEPS = "the command line"
"""Where steps given to convert_directory come from, in messages."""


@dataclass(frozen=True)
class Options:
    name: str = "codeship"
    generate_name: bool = False
    """Use metadata.generateName (``<name>-``) so that every run gets a new Pipeline."""
    namespace: str | None = None
    ci: Mapping[str, str] = field(default_factory=dict)
    """spec.ci fields (branch, tag, commitId, ...); the build tag comes from tag, else branch."""
    prebuilt: bool = False
    env_secrets: Mapping[str, str] = field(default_factory=dict)
    args_secrets: Mapping[str, str] = field(default_factory=dict)
    """Service → a Secret holding its build's encrypted args (``--args-secret``), read by the
    build as BuildKit secrets (``build.argsFrom``), as env_secrets stand in for variables."""
    aes_key: bytes | None = field(default=None, repr=False)
    """The project's AES key (codeship.aes, see read_aes_key): encrypted variables become
    Secrets in Conversion.secrets; without it they need env_secrets, as before."""
    source: Mapping[str, Any] | None = None
    """spec.source: a git checkout or an upload; None leaves the workspace empty."""
    dockercfg_secret: str | None = None
    """A dockerconfigjson Secret (``--dockercfg-secret``): the pipeline's registry credentials
    (``spec.dockercfgSecret``, what push steps use when they name none), standing in for every
    encrypted_dockercfg_path and dockercfg_service too."""


@dataclass(frozen=True)
class Conversion:
    manifest: dict[str, Any]
    warnings: tuple[ConversionWarning, ...]
    secrets: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    """Secret manifests holding decrypted variables and registry credentials (only with
    Options.aes_key), referenced by the Pipeline (envFrom, build.argsFrom, dockercfgSecret,
    imagePullSecrets): create them with the Pipeline, owned by it. Plaintext: never log."""


def _metadata(options: Options, report: Report) -> dict[str, Any]:
    limit = MAX_NAME - (GENERATE_SUFFIX + 1 if options.generate_name else 0)
    name = options.name
    if not PIPELINE_NAME.fullmatch(name) or len(name) > limit:
        report.error(
            "options",
            "name",
            f"{name!r}: a Pipeline name is at most {limit} lower-case letters, digits and '-'",
        )
    meta: dict[str, Any] = {"generateName": f"{name}-"} if options.generate_name else {"name": name}
    if options.namespace:
        meta["namespace"] = options.namespace
    return meta


def _ci(options: Options, report: Report) -> dict[str, str]:
    ci: dict[str, str] = {}
    for key, value in options.ci.items():
        if key not in CI_FIELDS:
            report.error("options", f"ci.{key}", f"unknown; one of {', '.join(CI_FIELDS)}")
        elif value:
            ci[key] = value
    return ci


def convert(
    services_doc: Any,
    steps_doc: Any,
    *,
    services_source: str = SERVICES_FILES[0],
    steps_source: str = STEPS_FILES[0],
    options: Options | None = None,
    files: ProjectFiles | None = None,
) -> Conversion:
    """Convert parsed Codeship files; raise ConversionError with every problem found.

    One pass: the compiler checks what converted even when the converter found errors
    elsewhere (a placeholder stands in for each step or service it could not convert), so
    the user sees every problem at once, the converter's first.
    """
    options = options or Options()
    report = Report()
    metadata = _metadata(options, report)
    _needs_source(services_doc, services_source, options, report)
    dockercfgs = Dockercfgs(
        report,
        (files or NoFiles()).read_text,
        options.aes_key,
        options.name,
        options.dockercfg_secret,
    )
    converted = convert_services(
        services_doc,
        services_source,
        report,
        files or NoFiles(),
        ServiceOptions(
            prebuilt=options.prebuilt,
            env_secrets=options.env_secrets,
            args_secrets=options.args_secrets,
            aes_key=options.aes_key,
            pipeline_name=options.name,
            has_source=options.source is not None,
        ),
        dockercfgs,
    )
    services = converted.services
    defined = set(services) | set(converted.failed)
    stepper = StepConverter(steps_source, defined, report, dockercfgs)
    steps = stepper.convert(steps_doc)
    spec: dict[str, Any] = {"services": services, "steps": steps}
    if converted.pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in converted.pull_secrets]
    if options.dockercfg_secret:
        spec["dockercfgSecret"] = options.dockercfg_secret
    if options.source is not None:
        spec["source"] = dict(options.source)
    ci = _ci(options, report)
    if ci:
        spec["ci"] = ci
    if report.errors:
        if steps:
            _check_the_rest(spec, converted.failed, stepper, services_source, steps_source, report)
        raise ConversionError(report.errors, report.warnings)
    try:
        compile_pipeline(spec)
    except InvalidSpecError as exc:
        for error in exc.errors:
            source, where = _origin(error.field, services_source, steps_source, stepper.fanned_out)
            report.error(source, where, error.message)
        raise ConversionError(report.errors, report.warnings) from None
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": metadata,
        "spec": spec,
    }
    secrets = tuple(secret.manifest(options.namespace) for secret in converted.secrets) + tuple(
        secret.manifest(options.namespace) for secret in dockercfgs.secrets.values()
    )
    return Conversion(manifest, tuple(report.warnings), secrets)


NEEDS_SOURCE = "a build needs the project's files"
"""How the compiler's refusal of a build without spec.source starts."""


def _needs_source(doc: Any, source: str, options: Options, report: Report) -> None:
    """The first error when something is built and no source is given: the flag to add."""
    if options.source is not None or options.prebuilt or not isinstance(doc, dict):
        return
    inner = doc.get("services")
    definitions = inner if isinstance(inner, dict) else doc
    built = [
        str(name)
        for name, body in definitions.items()
        if isinstance(body, dict) and body.get("build") is not None
    ]
    if built:
        report.error(
            source,
            "",
            f"{NEEDS_SOURCE} ({', '.join(built)} build from the checkout): give a source, "
            "--git-remote (the directory's origin at its HEAD commit), --git-url URL, or "
            "--upload (shipway run --dir uploads the directory); --prebuilt runs build.image "
            "instead",
        )


def _check_the_rest(
    spec: dict[str, Any],
    failed: tuple[str, ...],
    stepper: StepConverter,
    services_source: str,
    steps_source: str,
    report: Report,
) -> None:
    """The compiler's errors about what did convert, added to the converter's own errors."""
    check = copy.deepcopy(spec)
    stand_in = {"image": "placeholder"}
    check["services"] = {**check["services"], PLACEHOLDER_SERVICE: stand_in}
    for name in failed:
        if re.fullmatch(SERVICE_NAME_PATTERN, name):
            check["services"][name] = stand_in
    _replace_unknown(check["steps"], set(check["services"]))
    try:
        compile_pipeline(check)
    except InvalidSpecError as exc:
        tainted = [f"spec.services.{name}" for name in failed] + [
            "spec.steps" + where for where in stepper.failed
        ]
        quoted = [f"'{name}'" for name in (*failed, PLACEHOLDER_SERVICE)]
        reported = {(issue.source, issue.where) for issue in report.errors}
        for error in exc.errors:
            if any(error.field == t or error.field.startswith((t + ".", t + "[")) for t in tainted):
                continue
            if error.message.startswith(NEEDS_SOURCE) or any(q in error.message for q in quoted):
                continue
            source, where = _origin(error.field, services_source, steps_source, stepper.fanned_out)
            if (source, where) not in reported:  # the converter said it already
                report.error(source, where, error.message)


def _replace_unknown(steps: list[Any], known: set[str]) -> None:
    """Steps naming a service that is not in the check (its name is refused): the placeholder."""
    for step in steps:
        if not isinstance(step, dict):
            continue
        for key in ("service", "dockercfg_service"):
            if key in step and step[key] not in known:
                step[key] = PLACEHOLDER_SERVICE
        for key in ("steps", "on_fail"):
            if isinstance(step.get(key), list):
                _replace_unknown(step[key], known)


def _origin(field: str, services: str, steps: str, fanned_out: bool) -> tuple[str, str]:
    """Where a problem of the converted spec comes from in the Codeship files."""
    if field.startswith("spec.services."):
        return services, field.removeprefix("spec.services.")
    if field.startswith("spec.steps") and not fanned_out:
        return steps, field.removeprefix("spec.steps").lstrip(".")
    return "pipeline", field


# -- files --------------------------------------------------------------------------------


class DirectoryFiles:
    """The checkout: paths relative to the services file's directory, never outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, path: str) -> Path:
        return (self.root / path).resolve()

    def read_text(self, path: str) -> str:
        return self._path(path).read_text()

    def has_content(self, path: str) -> bool:
        target = self._path(path)
        if target != self.root and self.root not in target.parents:
            return False
        if target.is_file():
            return True
        return target.is_dir() and any(target.iterdir())


def find_file(directory: Path, candidates: tuple[str, ...], given: str | None) -> Path:
    """The file to read: the one given, else the first of Codeship's names that exists."""
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise FileError(f"{given}: no such file")
        return path
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    raise FileError(f"{directory}: none of {', '.join(candidates)} found")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise FileError(f"{path}: {exc.strerror or exc}") from None


def read_aes_key(directory: str | Path = ".", given: str | Path | None = None) -> bytes | None:
    """The project's AES key as jet finds it: the file given, else ``codeship.aes`` in the
    project directory, else None (no key). FileError when a key file is unusable."""
    path = Path(given) if given is not None else Path(directory) / AES_KEY_FILE
    if given is None and not path.is_file():
        return None
    try:
        return parse_key(_read(path))
    except JetCryptError as exc:
        raise FileError(f"{path}: {exc}") from None


def default_name(directory: Path) -> str:
    """A Pipeline name from the project directory: ``My_App`` → ``my-app``."""
    name = dns_label(directory.resolve().name, MAX_NAME - GENERATE_SUFFIX - 1)
    return name if name != "x" else "codeship"


def convert_directory(
    directory: str | Path = ".",
    *,
    services_path: str | None = None,
    steps_path: str | None = None,
    options: Options | None = None,
    steps: Any = None,
) -> Conversion:
    """Find, read and convert a project's files the way Codeship looks them up.

    ``steps``, parsed steps, stands in for the steps file, which is then not read (``jet run``
    runs one command in a service without one). Raises FileError for a missing or unparsable
    file, ConversionError for the rest.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileError(f"{directory}: not a directory")
    services_file = find_file(root, SERVICES_FILES, services_path)
    services_doc = parse_file_text(_read(services_file), str(services_file))
    if steps is None:
        steps_file = str(find_file(root, STEPS_FILES, steps_path))
        steps = parse_file_text(_read(Path(steps_file)), steps_file)
    else:
        steps_file = COMMAND_LINE_STEPS
    return convert(
        services_doc,
        steps,
        services_source=str(services_file),
        steps_source=steps_file,
        options=options or Options(name=default_name(root)),
        files=DirectoryFiles(services_file.parent),
    )
