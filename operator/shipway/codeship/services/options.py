"""What the command line decides for every service's conversion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceOptions:
    prebuilt: bool = False
    """Run the image a ``build`` names (build.image, or the service's image) instead of
    building it in the cluster."""
    env_secrets: Mapping[str, str] = field(default_factory=dict)
    """Service → Secret standing in for its encrypted_environment / encrypted_env_file."""
    args_secrets: Mapping[str, str] = field(default_factory=dict)
    """Service → Secret standing in for its build's encrypted_args / encrypted_args_file."""
    aes_key: bytes | None = field(default=None, repr=False)
    """The project's AES key: encrypted variables are decrypted into Secrets (see secrets)."""
    pipeline_name: str = "codeship"
    """Prefix of the Secrets' names."""

    has_source: bool = False
    """The Pipeline gets a source (checkout or upload): ``./`` holds the project's files."""
