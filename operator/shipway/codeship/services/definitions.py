"""The services of a services file, their names, and every service converted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shipway.codeship.dockercfg import Dockercfgs
from shipway.codeship.issues import WarningKind
from shipway.codeship.keys import SERVICES_FILE_KEYS
from shipway.codeship.report import Report, join, scalar_text, type_name
from shipway.codeship.secrets import EnvSecret
from shipway.codeship.services.files import NoFiles, ProjectFiles
from shipway.codeship.services.options import ServiceOptions
from shipway.codeship.services.service import Service
from shipway.engine.naming import container_name, host_names
from shipway.models.spec import SERVICE_NAME_PATTERN


@dataclass(frozen=True)
class ConvertedServices:
    services: dict[str, dict[str, Any]]
    secrets: tuple[EnvSecret, ...] = ()
    """Secrets holding decrypted variables, referenced by the services' envFrom."""
    pull_secrets: tuple[str, ...] = ()
    """dockerconfigjson Secrets of the services' encrypted_dockercfg_path: every pod pulls
    with them (spec.imagePullSecrets)."""
    failed: tuple[str, ...] = ()
    """Services that had errors (left out of ``services``)."""


def service_definitions(doc: Any, source: str, report: Report) -> dict[str, Any]:
    """The services of the file, at the top level or under ``services:`` (``version`` ignored)."""
    if doc is None:
        report.error(source, "", "the file is empty: it needs at least one service")
        return {}
    if not isinstance(doc, dict):
        report.error(source, "", f"must be a map of services, not {type_name(doc)}")
        return {}
    if "services" in doc and isinstance(doc["services"], dict):
        for key in doc:
            if key == "services" or key == "version" or str(key).startswith("x-"):
                continue
            rule = SERVICES_FILE_KEYS.get(str(key))
            note = rule.note if rule else "not a key of a services file"
            report.warn(source, str(key), f"ignored: {note}", WarningKind.IGNORED)
        services: dict[str, Any] = doc["services"]
        return services
    return {str(k): v for k, v in doc.items() if k != "version" and not str(k).startswith("x-")}


def check_name(name: str, source: str, report: Report) -> bool:
    """Whether Shipway takes ``name``; a note when Kubernetes takes it in another form."""
    if not re.fullmatch(SERVICE_NAME_PATTERN, name):
        report.error(
            source,
            name,
            "service names are letters, digits, '-', '_', '.' and '/' (at most 63, starting "
            "and ending with a letter or digit): rename it in both files",
        )
        return False
    hosts = host_names(name)
    if name == name.lower() and "/" not in name:
        return True  # my_db answers to my-db, as it always did
    if name.lower() in hosts:
        reach = (
            f"as {name.lower()} (and as {name} from programs whose resolver ignores case, "
            "as glibc's and Go's do; not musl's, on Alpine)"
        )
    else:
        reach = f"as {' or '.join(hosts)} ({name} is no host name)"
    report.warn(
        source,
        name,
        f"kept as the service's name; its containers are {container_name(name)!r} and other "
        f"services reach it {reach}",
    )
    return True


def convert_services(
    doc: Any,
    source: str,
    report: Report,
    files: ProjectFiles | None = None,
    *,
    options: ServiceOptions | None = None,
    dockercfgs: Dockercfgs | None = None,
) -> ConvertedServices:
    """Every service in Shipway's form, and the Secrets they need; problems go to ``report``."""
    files = files or NoFiles()
    options = options or ServiceOptions()
    definitions = service_definitions(doc, source, report)
    if not definitions and not report.errors:
        report.error(source, "", "no services defined")
    result: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    secrets: list[EnvSecret] = []
    pull: list[str] = []
    for name, body in definitions.items():
        if not check_name(name, source, report):
            failed.append(name)
            continue
        if not isinstance(body, dict):
            report.error(source, name, f"a service must be a map of keys, not {type_name(body)}")
            failed.append(name)
            continue
        service = Service(name, body, source, report, files, options)
        converted = service.convert()
        if converted is not None:
            result[name] = converted
            secrets.extend(s for s in (service.secret, service.args_secret) if s is not None)
        else:
            failed.append(name)
        if dockercfgs is not None and body.get("encrypted_dockercfg_path") is not None:
            at = join(name, "encrypted_dockercfg_path")
            path = scalar_text(report, source, at, body["encrypted_dockercfg_path"])
            secret = dockercfgs.secret_for(path, source, at) if path is not None else None
            if secret is not None and secret not in pull:
                pull.append(secret)
    for flag, names in (
        ("--env-secret", options.env_secrets),
        ("--args-secret", options.args_secrets),
    ):
        for name in names:
            if name not in definitions:
                report.error(source, "", f"{flag} names an unknown service {name!r}")
    return ConvertedServices(result, tuple(secrets), tuple(pull), tuple(failed))
