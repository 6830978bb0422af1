"""codeship-services.yml (or docker-compose.yml) → ``spec.services``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipway.codeship import daemon
from shipway.codeship.dockercfg import Dockercfgs
from shipway.codeship.environment import PlainEnvironment
from shipway.codeship.healthcheck import convert_healthcheck
from shipway.codeship.issues import WarningKind
from shipway.codeship.keys import (
    BUILD_KEYS,
    SERVICE_KEYS,
    SERVICES_FILE_KEYS,
    Handling,
)
from shipway.codeship.report import (
    Report,
    command_value,
    join,
    scalar_text,
    type_name,
)
from shipway.codeship.secrets import ENCRYPTED_ARGS_KEYS, EncryptedEnvironment, EnvSecret
from shipway.codeship.topology import ServiceTopology
from shipway.codeship.yamlfile import plain
from shipway.models.spec import SERVICE_NAME_PATTERN


class ProjectFiles(Protocol):
    """The checkout next to the services file (env files, volume directories)."""

    def read_text(self, path: str) -> str:
        """The text of ``path`` (relative to the services file's directory); OSError if none."""
        ...

    def has_content(self, path: str) -> bool:
        """Whether ``path`` is a file, or a directory with something in it."""
        ...


class NoFiles:
    """No checkout at hand: env files cannot be read, volume directories are not looked at."""

    def read_text(self, path: str) -> str:
        raise FileNotFoundError(path)

    def has_content(self, path: str) -> bool:
        return False


@dataclass(frozen=True)
class ServiceOptions:
    prebuilt: bool = False
    """Run the image a ``build`` names (build.image, or the service's image) instead of
    building it in the cluster."""
    env_secrets: Mapping[str, str] = field(default_factory=dict)
    """Service → Secret standing in for its encrypted_environment / encrypted_env_file."""
    aes_key: bytes | None = field(default=None, repr=False)
    """The project's AES key: encrypted variables are decrypted into Secrets (see secrets)."""
    pipeline_name: str = "codeship"
    """Prefix of the Secrets' names."""

    has_source: bool = False
    """The Pipeline gets a source (checkout or upload): ``./`` holds the project's files."""


@dataclass(frozen=True)
class ConvertedServices:
    services: dict[str, dict[str, Any]]
    secrets: tuple[EnvSecret, ...] = ()
    """Secrets holding decrypted variables, referenced by the services' envFrom."""
    pull_secrets: tuple[str, ...] = ()
    """dockerconfigjson Secrets of the services' encrypted_dockercfg_path: every pod pulls
    with them (spec.imagePullSecrets)."""


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


def convert_services(
    doc: Any,
    source: str,
    report: Report,
    files: ProjectFiles | None = None,
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
    secrets: list[EnvSecret] = []
    pull: list[str] = []
    for name, body in definitions.items():
        if not re.fullmatch(SERVICE_NAME_PATTERN, name):
            report.error(
                source,
                name,
                "Shipway service names are lower-case letters, digits, '-', '_' and '.' "
                "(at most 63, starting and ending with a letter or digit): rename it in both files",
            )
            continue
        if not isinstance(body, dict):
            report.error(source, name, f"a service must be a map of keys, not {type_name(body)}")
            continue
        service = _Service(name, body, source, report, files, options)
        converted = service.convert()
        if converted is not None:
            result[name] = converted
            secrets.extend(s for s in (service.secret, service.args_secret) if s is not None)
        if dockercfgs is not None and "encrypted_dockercfg_path" in body:
            at = join(name, "encrypted_dockercfg_path")
            path = scalar_text(report, source, at, body["encrypted_dockercfg_path"])
            secret = dockercfgs.secret_for(path, source, at) if path is not None else None
            if secret is not None and secret not in pull:
                pull.append(secret)
    for name in options.env_secrets:
        if name not in definitions:
            report.error(source, "", f"--env-secret names an unknown service {name!r}")
    return ConvertedServices(result, tuple(secrets), tuple(pull))


@dataclass
class _Service:
    name: str
    body: dict[str, Any]
    source: str
    report: Report
    files: ProjectFiles
    options: ServiceOptions
    secret: EnvSecret | None = None
    """Set by convert when the service's encrypted variables were decrypted."""
    args_secret: EnvSecret | None = None
    """Set by convert when its build's encrypted args were decrypted."""
    prebuilt: str | None = None
    """With ``--prebuilt``: the image run instead of the build."""

    def where(self, *keys: str | int) -> str:
        where = self.name
        for key in keys:
            where = join(where, key)
        return where

    def error(self, where: str, message: str) -> None:
        self.report.error(self.source, where, message)

    def warn(self, where: str, message: str, kind: WarningKind = WarningKind.NOTE) -> None:
        self.report.warn(self.source, where, message, kind)

    def convert(self) -> dict[str, Any] | None:
        errors_before = len(self.report.errors)
        for key in self.body:
            rule = SERVICE_KEYS.get(str(key))
            if rule is None:
                self.report.unknown_key(self.source, self.where(str(key)), str(key), SERVICE_KEYS)
            elif rule.handling is Handling.IGNORED:
                self.warn(self.where(key), f"ignored: {rule.note}", WarningKind.IGNORED)
        out: dict[str, Any] = {}
        image = self._image()
        build = self._build(image)
        if build is not None:
            out["build"] = build
            for key in ("cached", "default_cache_branch"):
                if key in self.body:
                    out[key] = plain(self.body[key])
        for key in ("cached", "default_cache_branch"):
            if key in self.body and build is None:
                self.warn(
                    self.where(key),
                    "ignored: only a service with build (built in the cluster) has a cache",
                    WarningKind.IGNORED,
                )
        image = self.prebuilt or image
        if image is not None:
            out["image"] = image
        for key in ("command", "entrypoint"):
            if key in self.body:
                value = command_value(self.report, self.source, self.where(key), self.body[key])
                if value is not None:
                    out[key] = value
        environment = self._environment()
        env_from = self._env_from(environment)
        if environment:
            out["environment"] = environment
        if env_from:
            out["envFrom"] = env_from
        if "working_dir" in self.body:
            value = scalar_text(
                self.report, self.source, self.where("working_dir"), self.body["working_dir"]
            )
            if value is not None:
                out["working_dir"] = value
        topology = ServiceTopology(
            self.name, self.body, self.source, self.report, self.files, self.options.has_source
        )
        volumes = topology.volumes()
        if volumes:
            out["volumes"] = volumes
        volumes_from = topology.volumes_from()
        if volumes_from:
            out["volumes_from"] = volumes_from
        links = topology.links()
        if links:
            out["links"] = links
        depends_on = topology.depends_on()
        if depends_on:
            out["depends_on"] = depends_on
        healthcheck = self._healthcheck()
        if healthcheck is not None:
            out["healthcheck"] = healthcheck
        if "resources" in self.body:
            out["resources"] = plain(self.body["resources"])
        if daemon.wants_daemon(self.body) or daemon.mounts_socket(self.body):
            out["add_docker"] = True
        elif image is not None and "build" not in self.body and daemon.is_dind_image(image):
            self.error(self.where("image"), daemon.dind_message(image))
        if len(self.report.errors) > errors_before:
            return None
        return out

    # -- image and build -------------------------------------------------------------------

    def _image(self) -> str | None:
        image = None
        if "image" in self.body:
            image = scalar_text(self.report, self.source, self.where("image"), self.body["image"])
            if image == "":
                self.error(self.where("image"), "must not be empty")
                image = None
        if "build" not in self.body:
            if "dockerfile" in self.body and image is not None:
                self.warn(
                    self.where("dockerfile"),
                    f"ignored: without build nothing is built; the service runs {image}",
                    WarningKind.IGNORED,
                )
            elif "dockerfile" in self.body:
                self.error(self.where("dockerfile"), "dockerfile is part of a build: set build")
            elif image is None and "image" not in self.body:
                self.error(self.name, "a service needs image (or build)")
            return image
        return None

    def _build(self, image: str | None) -> dict[str, Any] | str | None:
        """The service's build in Shipway's form (``--prebuilt``: None, ``image`` is set)."""
        if "build" not in self.body:
            return None
        parsed = self._parse_build()
        if parsed is None:
            return None
        build, description = parsed
        if not self.options.prebuilt:
            self._encrypted_args(build)
            return build
        chosen = image or build.get("image")
        if not chosen:
            self.error(
                self.where("build"),
                "--prebuilt runs the image the build produces, but this build does not name "
                "one: set build.image (or image) to the pushed image",
            )
            return None
        self.prebuilt = str(chosen)
        self.warn(
            self.where("build"),
            f"not built: runs the prebuilt image {chosen} (--prebuilt, instead of building "
            f"{description}); push it for this commit before running",
        )
        return None

    def _encrypted_args(self, build: dict[str, Any]) -> None:
        """``encrypted_args`` / ``encrypted_args_file`` → a Secret the build reads."""
        body = self.body["build"]
        if not isinstance(body, dict):
            return
        encrypted = EncryptedEnvironment(
            self.name,
            body,
            self.source,
            self.report,
            self.files.read_text,
            keys=ENCRYPTED_ARGS_KEYS,
            at=self.where("build"),
        )
        self.args_secret = encrypted.build_args(self.options.aes_key, self.options.pipeline_name)
        if self.args_secret is None:
            return
        build["argsFrom"] = [{"secretRef": {"name": self.args_secret.name}}]
        keys = ", ".join(sorted(self.args_secret.values))
        self.warn(
            self.where("build"),
            f"encrypted build args ({keys}) decrypted into Secret {self.args_secret.name!r} "
            "(build.argsFrom): the Dockerfile reads each as a BuildKit secret (RUN "
            "--mount=type=secret,id=KEY,env=KEY), not as ARG, so no value lands in the image",
        )

    def _parse_build(self) -> tuple[dict[str, Any], str] | None:
        """(``build`` in Shipway's spelling, "context X, Dockerfile Y"), or None after an error.

        Codeship's old spellings become the new ones (``path`` → ``context``,
        ``dockerfile_path`` → ``dockerfile``, compose v1's service-level ``dockerfile``).
        """
        value = self.body["build"]
        where = self.where("build")
        build: dict[str, Any] = {}
        if isinstance(value, str):
            build["context"] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                rule = BUILD_KEYS.get(str(key))
                if rule is None:
                    self.report.unknown_key(
                        self.source, join(where, str(key)), str(key), BUILD_KEYS
                    )
                    continue
                if rule.handling is Handling.ERROR:
                    self.error(join(where, key), rule.note)
                    continue
                if key in ENCRYPTED_ARGS_KEYS:
                    continue  # decrypted by _encrypted_args
                if key == "args":
                    args = plain(item)
                    if isinstance(args, dict | list):
                        build["args"] = args
                    else:
                        self.error(join(where, key), "must be a map or a list of KEY=VALUE")
                    continue
                text = scalar_text(self.report, self.source, join(where, key), item)
                new = {"path": "context", "dockerfile_path": "dockerfile"}.get(str(key), str(key))
                if new != key:
                    self.warn(
                        join(where, key), f"deprecated: use build.{new}", WarningKind.DEPRECATED
                    )
                if text is not None:
                    build[new] = text
        else:
            self.error(where, f"must be a path or a map, not {type_name(value)}")
            return None
        if "dockerfile" in self.body:
            text = scalar_text(
                self.report, self.source, self.where("dockerfile"), self.body["dockerfile"]
            )
            if text is not None:
                build["dockerfile"] = text
        parts = [
            f"{label} {build[key]}"
            for key, label in (("context", "context"), ("dockerfile", "Dockerfile"))
            if key in build
        ]
        return build, ", ".join(parts) or "context ."

    # -- environment -----------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        return PlainEnvironment(
            self.name, self.body, self.source, self.report, self.files.read_text
        ).variables()

    def _env_from(self, environment: dict[str, str]) -> list[dict[str, Any]]:
        env_from: list[dict[str, Any]] = []
        if "envFrom" in self.body:
            value = plain(self.body["envFrom"])
            if isinstance(value, list):
                env_from.extend(value)
            else:
                self.error(self.where("envFrom"), "must be a list")
        encrypted = EncryptedEnvironment(
            self.name, self.body, self.source, self.report, self.files.read_text
        )
        entries, self.secret = encrypted.env_from(
            self.options.env_secrets.get(self.name),
            self.options.aes_key,
            self.options.pipeline_name,
            environment,
        )
        return env_from + entries

    def _healthcheck(self) -> dict[str, Any] | None:
        if "healthcheck" not in self.body:
            return None
        return convert_healthcheck(
            self.body["healthcheck"], self.where("healthcheck"), self.source, self.report
        )
