"""The Secrets of decrypted Codeship files, created by ``shipway run`` with its Pipeline.

They are created before the Pipeline (its pods must find them), then owned by it, so deleting
the Pipeline deletes them. Their names come from an HMAC of their content
(:mod:`shipway.codeship.secrets`), so a later run of the same files finds them there already:
it adds itself as another owner (the garbage collector deletes a Secret with its last owner),
and it never deletes a Secret it did not create. If the Pipeline cannot be created, the Secrets
this run created are deleted again. Only names are ever printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from shipway import GROUP, KIND, VERSION
from shipway.cli.cluster import error_from


def create_secrets(core: Any, namespace: str, manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    """Create each Secret; the names of those this call created (existing ones are kept)."""
    created: list[str] = []
    try:
        for manifest in manifests:
            body = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}
            try:
                core.create_namespaced_secret(namespace, body)
            except ApiException as exc:
                if exc.status != 409:  # AlreadyExists: the same content (the name says so)
                    raise error_from(exc) from None
                continue
            created.append(str(manifest["metadata"]["name"]))
    except BaseException:
        delete_secrets(core, namespace, created)
        raise
    return created


def delete_secrets(core: Any, namespace: str, names: Iterable[str]) -> None:
    """Best effort: a Secret already gone is fine."""
    for name in names:
        try:
            core.delete_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise error_from(exc) from None


def owner_of(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """An owner reference to the created Pipeline (not a controller: a Secret may be shared)."""
    meta = pipeline["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
    }


def own_secrets(core: Any, namespace: str, names: Iterable[str], owner: Mapping[str, Any]) -> None:
    """Add ``owner`` to each Secret's owners (a strategic merge keyed by uid keeps the rest)."""
    patch = {"metadata": {"ownerReferences": [dict(owner)]}}
    for name in names:
        try:
            core.patch_namespaced_secret(name, namespace, patch)
        except ApiException as exc:
            raise error_from(exc) from None


def owned_by(
    core: Any, namespace: str, names: Iterable[str], uid: str
) -> tuple[list[str], list[str]]:
    """Of the Secrets named: those with the Pipeline of ``uid`` among their owners, and those
    that do not exist."""
    owned: list[str] = []
    missing: list[str] = []
    for name in names:
        try:
            secret = core.read_namespaced_secret(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                missing.append(name)
                continue
            raise error_from(exc) from None
        meta = json.loads(secret.data or b"{}").get("metadata") or {}
        if any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or []):
            owned.append(name)
    return owned, missing
