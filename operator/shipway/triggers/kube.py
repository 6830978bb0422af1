"""The receiver's and reporter's few Kubernetes calls (the shell), on an ``ApiClient``."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from shipway import GROUP, PLURAL, VERSION
from shipway.models.repository import SecretKeyRef

REPOSITORIES = "repositories"
Manifest = dict[str, Any]


class TriggersApi:
    def __init__(self, api: client.ApiClient) -> None:
        # Any: the client's stubs want model objects; plain dicts are what we send and read.
        self.custom: Any = client.CustomObjectsApi(api)
        self.core: Any = client.CoreV1Api(api)

    # -- reads --------------------------------------------------------------------------
    def repository(self, namespace: str, name: str) -> Manifest | None:
        try:
            got: Manifest = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, REPOSITORIES, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return got

    def secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        try:
            found = self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v) for k, v in (found.data or {}).items()}

    def secret_key(self, namespace: str, ref: SecretKeyRef | None) -> bytes | None:
        if ref is None:
            return None
        data = self.secret(namespace, ref.name)
        return None if data is None else data.get(ref.key)

    def pipelines(self, namespace: str, selector: str) -> list[Manifest]:
        got = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, label_selector=selector
        )
        return list(got.get("items") or [])

    def watch_pipelines(
        self, namespace: str, selector: str, resource_version: str | None
    ) -> Iterator[Mapping[str, Any]]:
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self.custom.list_namespaced_custom_object,
            GROUP, VERSION, namespace, PLURAL,
            label_selector=selector, resource_version=resource_version, timeout_seconds=300,
        )  # fmt: skip
        yield from stream

    # -- writes -------------------------------------------------------------------------
    def create_pipeline(
        self, namespace: str, manifest: Manifest, secrets: Iterable[Manifest]
    ) -> tuple[bool, Manifest]:
        """(created, the Pipeline): an existing one of that name is the same run, kept."""
        try:
            made: Manifest = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, manifest
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            name = manifest["metadata"]["name"]
            return False, self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
        owner = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": made["kind"],
            "name": made["metadata"]["name"],
            "uid": made["metadata"]["uid"],
        }
        for secret in secrets:
            body = {
                **secret,
                "metadata": {**secret["metadata"], "namespace": namespace,
                             "ownerReferences": [owner]},
            }  # fmt: skip
            try:
                self.core.create_namespaced_secret(namespace, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
        return True, made

    def patch_pipeline(self, namespace: str, name: str, patch: Manifest) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)

    def patch_repository_status(self, namespace: str, name: str, status: Manifest) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, REPOSITORIES, name, {"status": status}
        )

    def event(self, involved: Manifest, reason: str, message: str, kind: str = "Warning") -> None:
        """An Event on a Repository or Pipeline; best effort (an Event is never worth failing)."""
        meta = involved["metadata"]
        now = datetime.now(UTC)
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
            "source": {"component": "shipway-triggers"},
            "reportingComponent": "shipway-triggers",
        }
        try:
            self.core.create_namespaced_event(meta["namespace"], body)
        except ApiException:
            return
