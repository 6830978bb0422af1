"""One service of codeship-services.yml → ``spec.services.NAME``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipway.codeship import daemon
from shipway.codeship.environment import PlainEnvironment
from shipway.codeship.healthcheck import convert_healthcheck
from shipway.codeship.issues import WarningKind
from shipway.codeship.keys import SERVICE_KEYS, Handling
from shipway.codeship.report import Report, Reporting, command_value, join, scalar_text
from shipway.codeship.secrets import EncryptedEnvironment, EnvSecret
from shipway.codeship.services.build import ServiceBuild
from shipway.codeship.services.files import ProjectFiles
from shipway.codeship.services.options import ServiceOptions
from shipway.codeship.topology import ServiceTopology
from shipway.codeship.yamlfile import plain

KEEP_EMPTY = frozenset({"image", "build", "add_docker"})
"""Keys whose empty value means something (an error, or no daemon); any other key written
without a value (``environment:``) is none, as compose and Codeship read it."""


@dataclass
class Service(Reporting):
    name: str
    raw: dict[str, Any]
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

    def __post_init__(self) -> None:
        self.body = {k: v for k, v in self.raw.items() if v is not None or k in KEEP_EMPTY}

    def where(self, *keys: str | int) -> str:
        where = self.name
        for key in keys:
            where = join(where, key)
        return where

    def convert(self) -> dict[str, Any] | None:
        errors_before = len(self.report.errors)
        for key in self.body:
            rule = SERVICE_KEYS.get(str(key))
            if rule is None:
                self.report.unknown_key(
                    self.source, self.where(str(key)), str(key), known=SERVICE_KEYS
                )
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
        out.update(self._topology())
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

    def _topology(self) -> dict[str, Any]:
        topology = ServiceTopology(
            self.name, self.body, self.source, self.report, self.files, self.options.has_source
        )
        out: dict[str, Any] = {}
        for key, value in (
            ("volumes", topology.volumes()),
            ("volumes_from", topology.volumes_from()),
            ("links", topology.links()),
            ("depends_on", topology.depends_on()),
        ):
            if value:
                out[key] = value
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
        build = ServiceBuild(
            self.name, self.body, self.source, self.report, self.files, self.options
        )
        converted = build.convert(image)
        self.prebuilt = build.prebuilt
        self.args_secret = build.args_secret
        return converted

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
