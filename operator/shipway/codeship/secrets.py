"""A service's ``encrypted_environment`` / ``encrypted_env_file`` → ``envFrom`` of a Secret;
its build's ``encrypted_args`` / ``encrypted_args_file`` → ``build.argsFrom`` of another.

Two ways, both keeping the plaintext out of the Pipeline: the user names a Secret that already
holds the variables (``--env-secret SERVICE=SECRET``), or the converter is given the project's
AES key (``codeship.aes``) and decrypts the files itself into a Secret manifest returned next to
the Pipeline (:attr:`Conversion.secrets`), for the caller to create.

The Secret's name is ``<pipeline>-<service>-env-<digest>`` (``-args-`` for build args): the
digest is an HMAC of the
variables under the AES key, so the same files give the same name (re-runs share the Secret,
which also works for ``generateName`` Pipelines, whose final name is unknown here), changed
files give a new one, and the name reveals nothing about the values without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipway.codeship.issues import WarningKind
from shipway.codeship.jetcrypt import JetCryptError, Variables, decrypt_variables
from shipway.codeship.keys import NEEDS_KEY
from shipway.codeship.report import Report, join, scalar_text, string_list, type_name
from shipway.engine.naming import LABEL_MANAGED_BY, MANAGED_BY, dns_label, label_value

ENCRYPTED_KEYS = ("encrypted_environment", "encrypted_env_file")
"""Codeship's order: later sources win (and both win over environment and env_file)."""
ENCRYPTED_ARGS_KEYS = ("encrypted_args", "encrypted_args_file")
"""The same for a build's args (inline first, then the file)."""
LABEL_SERVICE = "shipway.dev/service"
ANNOTATION_SOURCES = "shipway.dev/decrypted-from"
DIGEST_CHARS = 10


@dataclass(frozen=True)
class EnvSecret:
    """The decrypted variables of one service; ``values`` is plaintext, never in a repr."""

    service: str
    name: str
    values: Mapping[str, str] = field(repr=False)
    sources: tuple[str, ...]
    """Where the values come from (file paths, ``encrypted_environment[0]``), for the record."""

    def manifest(self, namespace: str | None = None) -> dict[str, Any]:
        """The Secret to create (the caller adds the Pipeline as its owner)."""
        return secret_manifest(
            self.name,
            namespace,
            labels={LABEL_SERVICE: label_value(self.service)},
            annotations={ANNOTATION_SOURCES: ", ".join(self.sources)},
            secret_type="Opaque",
            data=self.values,
        )


def secret_manifest(
    name: str,
    namespace: str | None,
    *,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    secret_type: str,
    data: Mapping[str, str],
) -> dict[str, Any]:
    """A Secret the conversion made (labelled as Shipway's), ``data`` base64-encoded."""
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {LABEL_MANAGED_BY: MANAGED_BY, **labels},
        "annotations": dict(annotations),
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": secret_type,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def secret_name(
    pipeline: str, service: str, values: Mapping[str, str], key: bytes, *, kind: str = "env"
) -> str:
    """``<pipeline>-<service>-<kind>-<HMAC of the variables>``, at most 63 characters."""
    payload: list[Any] = [service, sorted(values.items())]
    if kind != "env":  # env Secrets keep the names they had before build args came
        payload.append(kind)
    canonical = json.dumps(payload, separators=(",", ":"))
    digest = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()[:DIGEST_CHARS]
    prefix = f"{dns_label(pipeline, 30)}-{dns_label(service, 16)}"
    return f"{prefix}-{kind}-{digest}"


@dataclass
class EncryptedEnvironment:
    """The encrypted variables of one service, reported against the services file."""

    service: str
    body: dict[str, Any]
    source: str
    report: Report
    read_text: Callable[[str], str]
    """``ProjectFiles.read_text``: the encrypted files, relative to the services file."""
    keys: tuple[str, str] = ENCRYPTED_KEYS
    """(inline values, file) of the body: the environment's, or a build's args."""
    at: str | None = None
    """Where the body is (default: the service)."""

    def where(self, key: str) -> str:
        return join(self.at or self.service, key)

    def build_args(self, aes_key: bytes | None, pipeline: str) -> EnvSecret | None:
        """A build's encrypted args decrypted into a Secret (``build.argsFrom``), or None
        (nothing encrypted, or an error reported)."""
        present = [k for k in self.keys if k in self.body]
        if not present:
            return None
        if aes_key is None:
            for key in present:
                self.report.error(
                    self.source,
                    self.where(key),
                    f"encrypted build args {NEEDS_KEY}, or a Secret that holds them: "
                    "--args-secret SERVICE=SECRET (build.argsFrom)",
                )
            return None
        values, sources = self._decrypted(aes_key)
        if values is None or not values:
            return None
        return EnvSecret(
            self.service,
            secret_name(pipeline, self.service, values, aes_key, kind="args"),
            values,
            tuple(sources),
        )

    def _decrypted(self, aes_key: bytes) -> tuple[dict[str, str] | None, list[str]]:
        """Every variable (later sources win) and where they came from; None on errors."""
        errors_before = len(self.report.errors)
        values: dict[str, str] = {}
        sources: list[str] = []
        for label, content, where in self._encrypted_items():
            try:
                variables = decrypt_variables(content, aes_key)
            except JetCryptError as exc:
                self.report.error(self.source, where, f"{label}: {exc}")
                continue
            self._bare_names(variables, label, where)
            values.update(variables.values)
            sources.append(label)
        if len(self.report.errors) > errors_before:
            return None, sources
        return values, sources

    def env_from(
        self,
        named_secret: str | None,
        aes_key: bytes | None,
        pipeline: str,
        environment: dict[str, str],
    ) -> tuple[list[dict[str, Any]], EnvSecret | None]:
        """``envFrom`` entries for the encrypted keys, and the Secret to create (if any).

        Variables also set in plain ``environment`` are removed from it (given as a dict, and
        changed), because in a Pod ``env`` would win where on Codeship the encrypted value wins.
        """
        present = [k for k in self.keys if k in self.body]
        if named_secret is not None:
            for key in present:
                self.report.warn(
                    self.source,
                    self.where(key),
                    f"replaced by envFrom Secret {named_secret!r} (--env-secret); it must hold "
                    "the decrypted variables",
                )
            if not present:
                self.report.warn(
                    self.source,
                    self.service,
                    f"--env-secret adds Secret {named_secret!r} although the service has no "
                    "encrypted environment",
                )
            return [{"secretRef": {"name": named_secret}}], None
        if not present:
            return [], None
        if aes_key is None:
            for key in present:
                self.report.error(
                    self.source,
                    self.where(key),
                    f"encrypted variables {NEEDS_KEY}, or a Secret that holds them: "
                    "--env-secret SERVICE=SECRET (envFrom)",
                )
            return [], None
        values, sources = self._decrypted(aes_key)
        if values is None:
            return [], None
        for key in sorted(set(values) & set(environment)):
            del environment[key]
            self.report.warn(
                self.source,
                self.where("environment"),
                f"{key} is also encrypted: the encrypted value wins, as on Codeship",
            )
        if not values:
            self.report.warn(
                self.source,
                self.where(present[-1]),
                "the encrypted variables are empty: no Secret is needed",
            )
            return [], None
        secret = EnvSecret(
            self.service,
            secret_name(pipeline, self.service, values, aes_key),
            values,
            tuple(sources),
        )
        self.report.warn(
            self.source,
            self.where(present[-1]) if len(present) == 1 else self.service,
            f"{len(values)} encrypted variables decrypted into Secret {secret.name!r} "
            "(envFrom); create it with the Pipeline",
        )
        return [{"secretRef": {"name": secret.name}}], secret

    def _encrypted_items(self) -> list[tuple[str, str, str]]:
        """(label, encrypted content, where) in Codeship's order; unreadable ones reported."""
        items: list[tuple[str, str, str]] = []
        inline, file_key = self.keys
        if inline in self.body:
            where = self.where(inline)
            value = self.body[inline]
            if not isinstance(value, list | str):
                self.report.error(
                    self.source,
                    where,
                    f"must be a list of encrypted values, not {type_name(value)}",
                )
                value = []
            for index, item in enumerate([value] if isinstance(value, str) else value):
                at = join(where, index) if isinstance(value, list) else where
                text = scalar_text(self.report, self.source, at, item)
                if text is not None:
                    items.append((at.removeprefix(f"{self.service}."), text, at))
        if file_key in self.body:
            value = self.body[file_key]
            where = self.where(file_key)
            for index, path in enumerate(string_list(self.report, self.source, where, value) or []):
                at = join(where, index) if isinstance(value, list) else where
                try:
                    items.append((path, self.read_text(path), at))
                except OSError as exc:
                    self.report.error(self.source, at, f"cannot read {path}: {exc.strerror or exc}")
        return items

    def _bare_names(self, variables: Variables, label: str, where: str) -> None:
        for number in variables.without_value:
            self.report.warn(
                self.source,
                where,
                f"{label} line {number} names a variable without a value: docker takes it from "
                "the host's environment, which a pipeline does not have; it is left out",
                WarningKind.NOTE,
            )
