"""Kubeconfig files (written as JSON, which every Kubernetes client reads as YAML)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from localkube import config


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write(path: Path, *, server: str, ca: Path, cert: Path, key: Path, user: str) -> None:
    """A self-contained kubeconfig (certificates embedded) for one client certificate."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": config.CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert),
                    "client-key-data": _b64(key),
                },
            }
        ],
        "contexts": [
            {
                "name": config.CLUSTER_NAME,
                "context": {"cluster": config.CLUSTER_NAME, "user": user},
            }
        ],
        "current-context": config.CLUSTER_NAME,
        "preferences": {},
    }
    text = json.dumps(doc, indent=2) + "\n"
    if path.is_file() and path.read_text() == text:
        return  # unchanged: leave the file (and whoever watches it) alone
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)
