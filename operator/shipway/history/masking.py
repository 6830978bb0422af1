"""Which Secrets a Pipeline uses and which of their values are masked in logs (pure).

Every Secret the spec names: ``envFrom`` secretRef, build secrets, ``dockercfgSecret``, the
source's ``secretName``; ``shipway run``'s decrypted environment, build args and registry
credentials are Secrets the Pipeline owns and names so. Their values are masked
as GitHub Actions masks secrets: the raw value, wherever it appears.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

SECRET_KEYS = ("dockercfgSecret", "secretName")


def referenced_secrets(spec: Mapping[str, Any]) -> set[str]:
    """Names of every Secret the spec refers to, wherever it does."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "secretRef" and isinstance(value, Mapping) and value.get("name"):
                    found.add(str(value["name"]))
                elif key in SECRET_KEYS and isinstance(value, str) and value:
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(spec)
    return found


def secret_values(secret: Mapping[str, Any]) -> list[str]:
    """The values a Secret holds, decoded; a Docker config's passwords and auths too."""
    values: list[str] = []
    for raw in (secret.get("data") or {}).values():
        try:
            text = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue  # binary data is not printed as text either
        values.append(text)
        values.extend(_docker_config_values(text))
    values.extend(str(v) for v in (secret.get("stringData") or {}).values())
    return values


def _docker_config_values(text: str) -> Iterator[str]:
    """The credentials inside a Docker config (``auths.<host>.auth|password|...``)."""
    if not text.lstrip().startswith("{"):
        return
    try:
        config = json.loads(text)
    except ValueError:
        return
    auths = config.get("auths", config) if isinstance(config, dict) else {}
    for entry in auths.values() if isinstance(auths, dict) else ():
        if not isinstance(entry, dict):
            continue
        for key in ("auth", "password", "identitytoken", "registrytoken"):
            if isinstance(entry.get(key), str):
                yield entry[key]
        if isinstance(entry.get("auth"), str):
            try:
                user_pass = base64.b64decode(entry["auth"]).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                continue
            yield user_pass.partition(":")[2]


def masked_values(secrets: Iterable[Mapping[str, Any]]) -> list[str]:
    return [value for secret in secrets for value in secret_values(secret)]
