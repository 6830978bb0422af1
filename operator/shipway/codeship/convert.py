"""Codeship's two files → one Pipeline manifest, checked by the operator's own compiler."""

from __future__ import annotations

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
from shipway.codeship.steps import StepConverter
from shipway.codeship.yamlfile import FileError, parse_file_text
from shipway.engine.naming import dns_label
from shipway.models import CIContext
from shipway.spec.compiler import compile_pipeline
from shipway.spec.errors import InvalidSpecError

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
    """Convert parsed Codeship files; raise ConversionError with every problem found."""
    options = options or Options()
    report = Report()
    metadata = _metadata(options, report)
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
            aes_key=options.aes_key,
            pipeline_name=options.name,
            has_source=options.source is not None,
        ),
        dockercfgs,
    )
    services = converted.services
    defined = set(services)
    if isinstance(services_doc, dict):
        # steps may name a service that failed to convert: report only the real problem
        inner = services_doc.get("services")
        defined |= {str(k) for k in (inner if isinstance(inner, dict) else services_doc)}
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
