"""A service's ``build`` in Shipway's form: Codeship's old spellings, ``--prebuilt``, and the
encrypted build args (decrypted into a Secret, or one the user names with ``--args-secret``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipway.codeship.issues import WarningKind
from shipway.codeship.keys import BUILD_KEYS, Handling
from shipway.codeship.report import Report, Reporting, join, scalar_text, type_name
from shipway.codeship.secrets import ENCRYPTED_ARGS_KEYS, EncryptedEnvironment, EnvSecret
from shipway.codeship.services.files import ProjectFiles
from shipway.codeship.services.options import ServiceOptions
from shipway.codeship.yamlfile import plain

OLD_SPELLINGS = {"path": "context", "dockerfile_path": "dockerfile"}


@dataclass
class ServiceBuild(Reporting):
    """The ``build`` of one service, reported against the services file."""

    name: str
    body: dict[str, Any]
    """The service's keys (compose v1's ``dockerfile`` sits next to ``build``)."""
    source: str
    report: Report
    files: ProjectFiles
    options: ServiceOptions
    args_secret: EnvSecret | None = None
    """Set when the build's encrypted args were decrypted."""
    prebuilt: str | None = None
    """With ``--prebuilt``: the image run instead of the build."""

    def where(self, *keys: str) -> str:
        where = self.name
        for key in keys:
            where = join(where, key)
        return where

    def convert(self, image: str | None) -> dict[str, Any] | str | None:
        """The service's build in Shipway's form (``--prebuilt``: None, ``prebuilt`` set)."""
        parsed = self._parse()
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
        """``encrypted_args`` / ``encrypted_args_file`` → a Secret the build reads: decrypted
        with the key, or the one ``--args-secret`` names."""
        body = self.body["build"]
        at = self.where("build")
        present = [k for k in ENCRYPTED_ARGS_KEYS if isinstance(body, dict) and k in body]
        named = self.options.args_secrets.get(self.name)
        if named is not None:
            build["argsFrom"] = [{"secretRef": {"name": named}}]
            for key in present:
                self.warn(
                    join(at, key),
                    f"replaced by Secret {named!r} (--args-secret, build.argsFrom): it must hold "
                    "the decrypted args; the Dockerfile reads each as a BuildKit secret (RUN "
                    "--mount=type=secret,id=KEY,env=KEY), not as ARG",
                )
            if not present:
                self.warn(
                    at,
                    f"--args-secret adds Secret {named!r} (build.argsFrom) although the build "
                    "has no encrypted args",
                )
            return
        if not isinstance(body, dict):
            return
        encrypted = EncryptedEnvironment(
            self.name,
            body,
            self.source,
            self.report,
            self.files.read_text,
            keys=ENCRYPTED_ARGS_KEYS,
            at=at,
        )
        self.args_secret = encrypted.build_args(self.options.aes_key, self.options.pipeline_name)
        if self.args_secret is None:
            return
        build["argsFrom"] = [{"secretRef": {"name": self.args_secret.name}}]
        keys = ", ".join(sorted(self.args_secret.values))
        self.warn(
            at,
            f"encrypted build args ({keys}) decrypted into Secret {self.args_secret.name!r} "
            "(build.argsFrom): the Dockerfile reads each as a BuildKit secret (RUN "
            "--mount=type=secret,id=KEY,env=KEY), not as ARG, so no value lands in the image",
        )

    def _parse(self) -> tuple[dict[str, Any], str] | None:
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
                self._key(build, str(key), item, join(where, str(key)))
        else:
            self.error(where, f"must be a path or a map, not {type_name(value)}")
            return None
        if self.body.get("dockerfile") is not None:
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

    def _key(self, build: dict[str, Any], key: str, item: Any, at: str) -> None:
        rule = BUILD_KEYS.get(key)
        if rule is None:
            self.report.unknown_key(self.source, at, key, known=BUILD_KEYS)
        elif rule.handling is Handling.IGNORED:
            self.warn(at, f"ignored: {rule.note}", WarningKind.IGNORED)
        elif rule.handling is Handling.ERROR:
            self.error(at, rule.note)
        elif key in ENCRYPTED_ARGS_KEYS or item is None:
            return  # decrypted by _encrypted_args; an empty key is none
        elif key == "args":
            args = plain(item)
            if isinstance(args, dict | list):
                build["args"] = args
            else:
                self.error(at, "must be a map or a list of KEY=VALUE")
        else:
            text = scalar_text(self.report, self.source, at, item)
            new = OLD_SPELLINGS.get(key, key)
            if new != key:
                self.warn(at, f"deprecated: use build.{new}", WarningKind.DEPRECATED)
            if text is not None:
                build[new] = text
