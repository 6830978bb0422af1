"""A service's plain variables: ``environment`` and ``env_file`` → ``spec.services.X.environment``.

Encrypted ones (``encrypted_environment``, ``encrypted_env_file``) never land here: see secrets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipway.codeship.report import Report, Reporting, join, scalar_text, string_list, type_name
from shipway.codeship.yamlfile import text_of

_ENV_KEY = re.compile(r"\S+")


@dataclass
class PlainEnvironment(Reporting):
    service: str
    body: dict[str, Any]
    source: str
    report: Report
    read_text: Callable[[str], str]
    """``ProjectFiles.read_text``: env files, relative to the services file."""

    def where(self, key: str) -> str:
        return join(self.service, key)

    def variables(self) -> dict[str, str]:
        """``environment`` then ``env_file`` (later wins), as plain values."""
        env: dict[str, str] = {}
        if "environment" in self.body:
            self._values(self.body["environment"], env)
        if "env_file" in self.body:
            paths = string_list(
                self.report, self.source, self.where("env_file"), self.body["env_file"]
            )
            for index, path in enumerate(paths or ()):
                where = self.where("env_file") + (
                    f"[{index}]" if isinstance(self.body["env_file"], list) else ""
                )
                self._env_file(path, where, env)
        return env

    def _values(self, value: Any, env: dict[str, str]) -> None:
        where = self.where("environment")
        if isinstance(value, dict):
            entries = [(text_of(k), v, join(where, text_of(k))) for k, v in value.items()]
            for key, raw, at in entries:
                if raw is None:
                    self._no_value(key, at)
                elif isinstance(raw, dict | list):
                    self.error(at, f"must be a string, number or boolean, not {type_name(raw)}")
                else:
                    env[key] = text_of(raw)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                at = join(where, index)
                text = scalar_text(self.report, self.source, at, item)
                if text is None:
                    continue
                key, sep, val = text.partition("=")
                if not sep:
                    self._no_value(key, at)
                else:
                    env[key] = val
        else:
            self.error(where, f"must be a map or a list of KEY=VALUE, not {type_name(value)}")

    def _no_value(self, key: str, where: str) -> None:
        self.warn(
            where,
            f"{key} has no value: docker-compose takes it from the host's environment, which "
            "a pipeline does not have; it is left out (put it in a Secret and use envFrom)",
        )

    def _env_file(self, path: str, where: str, env: dict[str, str]) -> None:
        try:
            text = self.read_text(path)
        except OSError as exc:
            self.error(where, f"cannot read {path}: {exc.strerror or exc}")
            return
        count = 0
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.lstrip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not _ENV_KEY.fullmatch(key):
                self.error(where, f"{path} line {number}: {key!r} is not a variable name")
                continue
            if not sep:
                self._no_value(key, f"{where} ({path} line {number})")
                continue
            env[key] = value
            count += 1
        if count:
            self.warn(
                where,
                f"{count} variables of {path} are inlined into the Pipeline, readable by anyone "
                "who can read it; for secrets use a Secret and envFrom instead",
            )
