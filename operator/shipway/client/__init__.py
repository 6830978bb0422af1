"""The user-facing commands: convert Codeship files, run and follow Pipelines, read their logs.

Registering the commands imports nothing of the Kubernetes client; each command loads it when
it runs, so ``shipway validate`` and ``shipway render`` stay quick.
"""

from __future__ import annotations

from typing import Any

from shipway.client.commands import register


def register_client_commands(sub: Any) -> None:
    """Add convert, run, status, logs, cancel and list to the ``shipway`` subparsers."""
    register(sub)


__all__ = ["register_client_commands"]
