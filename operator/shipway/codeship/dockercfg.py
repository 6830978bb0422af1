"""Codeship's registry credentials → a ``kubernetes.io/dockerconfigjson`` Secret.

``encrypted_dockercfg_path`` names a jet-encrypted dockercfg, either the old ``.dockercfg``
form (``{"registry": {"auth": ...}}``) or ``~/.docker/config.json`` (``{"auths": {...}}``);
Codeship takes both. With the project's AES key it is decrypted here, client-side, into the
``config.json`` form a dockerconfigjson Secret holds. The Secret is named after an HMAC of
its content under the key, like the environment's Secrets (:mod:`shipway.codeship.secrets`):
the same file gives the same name, and the name tells nothing without the key.

Without a key the user names a Secret that already holds the credentials
(``--dockercfg-secret NAME``); a step that needs credentials and has neither is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipway.codeship.jetcrypt import JetCryptError, decrypt_text
from shipway.codeship.keys import NEEDS_KEY
from shipway.codeship.report import Report
from shipway.codeship.secrets import secret_manifest
from shipway.engine.naming import dns_label

DIGEST_CHARS = 10
ANNOTATION_SOURCE = "shipway.dev/decrypted-from"


class DockercfgError(ValueError):
    """The decrypted file is no dockercfg; the message says why (never its content)."""


def as_config_json(text: str) -> str:
    """A dockercfg in either of Codeship's forms as ``config.json`` (``{"auths": ...}``)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise DockercfgError(
            "the decrypted file is not JSON (a dockercfg or ~/.docker/config.json)"
        ) from None
    if not isinstance(data, dict):
        raise DockercfgError("the decrypted file is not a JSON object of registries")
    auths = data.get("auths") if "auths" in data else data
    if not isinstance(auths, dict) or not all(isinstance(v, dict) for v in auths.values()):
        raise DockercfgError("the decrypted file holds no registry credentials (auths)")
    return json.dumps(data if "auths" in data else {"auths": data})


@dataclass(frozen=True)
class DockercfgSecret:
    """Decrypted registry credentials; ``config`` is plaintext, never in a repr."""

    name: str
    config: str = field(repr=False)
    source: str

    def manifest(self, namespace: str | None = None) -> dict[str, Any]:
        """The Secret to create (the caller adds the Pipeline as its owner)."""
        return secret_manifest(
            self.name,
            namespace,
            labels={},
            annotations={ANNOTATION_SOURCE: self.source},
            secret_type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": self.config},
        )


def secret_name(pipeline: str, config: str, key: bytes) -> str:
    """``<pipeline>-dockercfg-<HMAC of the credentials>``, at most 63 characters."""
    digest = hmac.new(key, config.encode(), hashlib.sha256).hexdigest()[:DIGEST_CHARS]
    return f"{dns_label(pipeline, 40)}-dockercfg-{digest}"


@dataclass
class Dockercfgs:
    """Every ``encrypted_dockercfg_path`` of a project, decrypted once per file."""

    report: Report
    read_text: Callable[[str], str]
    aes_key: bytes | None = field(default=None, repr=False)
    pipeline: str = "codeship"
    named: str | None = None
    """``--dockercfg-secret``: stands in for every encrypted dockercfg."""
    secrets: dict[str, DockercfgSecret] = field(default_factory=dict)
    """By path."""

    def secret_for(self, path: str, source: str, where: str) -> str | None:
        """The Secret standing for the encrypted file at ``path``, or None (reported against
        ``where`` in the file ``source``)."""
        if self.named is not None:
            return self.named
        if path in self.secrets:
            return self.secrets[path].name
        if self.aes_key is None:
            self.report.error(
                source,
                where,
                f"encrypted registry credentials {NEEDS_KEY}, or a dockerconfigjson Secret that "
                "holds them: --dockercfg-secret NAME",
            )
            return None
        try:
            config = as_config_json(decrypt_text(self.read_text(path), self.aes_key))
        except OSError as exc:
            self.report.error(source, where, f"cannot read {path}: {exc.strerror or exc}")
            return None
        except (JetCryptError, DockercfgError) as exc:
            self.report.error(source, where, f"{path}: {exc}")
            return None
        secret = DockercfgSecret(secret_name(self.pipeline, config, self.aes_key), config, path)
        self.secrets[path] = secret
        return secret.name
