"""The receiver's and reporter's few Kubernetes calls (the shell), on an ``ApiClient``."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from shipway import GROUP, PLURAL, VERSION
from shipway.models.repository import SecretKeyRef
from shipway.triggers.cache import Informer
from shipway.triggers.warm import LABEL_WARM

REPOSITORIES = "repositories"
Manifest = dict[str, Any]


def _watcher(
    lister: Any, *args: Any, **kwargs: Any
) -> Callable[[str | None], Iterator[Mapping[str, Any]]]:
    def stream(version: str | None) -> Iterator[Mapping[str, Any]]:
        yield from watch.Watch().stream(  # type: ignore[no-untyped-call]
            lister, *args, resource_version=version, timeout_seconds=300, **kwargs
        )

    return stream


class TriggersApi:
    def __init__(self, api: client.ApiClient) -> None:
        # Any: the client's stubs want model objects; plain dicts are what we send and read.
        self.custom: Any = client.CustomObjectsApi(api)
        self.core: Any = client.CoreV1Api(api)
        self._api = api
        self.repositories: dict[str, Informer] = {}
        self.secrets: dict[str, Informer] = {}
        self.warm_claims: dict[str, Informer] = {}
        """Spare workspace claims (:mod:`~shipway.triggers.warm`), by namespace."""

    def start_caches(
        self,
        namespaces: Iterable[str],
        on_repository: Callable[[Manifest], None] | None = None,
        on_claim: Callable[[Manifest], None] | None = None,
    ) -> None:
        """Watch the Repositories, Secrets and spare claims of ``namespaces`` (cache.py
        says why)."""
        to_dict = self._api.sanitize_for_serialization
        for namespace in namespaces:
            list_repos = self.custom.list_namespaced_custom_object
            repos = Informer(
                partial(list_repos, GROUP, VERSION, namespace, REPOSITORIES),
                _watcher(list_repos, GROUP, VERSION, namespace, REPOSITORIES),
                name=f"repositories/{namespace}",
                to_dict=to_dict,
                on_change=on_repository,
            )
            list_secrets = self.core.list_namespaced_secret
            secrets = Informer(
                partial(list_secrets, namespace),
                _watcher(list_secrets, namespace),
                name=f"secrets/{namespace}",
                to_dict=to_dict,
            )
            list_claims = self.core.list_namespaced_persistent_volume_claim
            claims = Informer(
                partial(list_claims, namespace, label_selector=LABEL_WARM),
                _watcher(list_claims, namespace, label_selector=LABEL_WARM),
                name=f"warm-claims/{namespace}",
                to_dict=to_dict,
                on_change=on_claim,
            )
            self.repositories[namespace], self.secrets[namespace] = repos, secrets
            self.warm_claims[namespace] = claims
            for informer in (repos, secrets, claims):
                informer.start()

    def wait_synced(self, timeout: float) -> bool:
        informers = [*self.repositories.values(), *self.secrets.values(),
                     *self.warm_claims.values()]  # fmt: skip
        return all(i.synced.wait(timeout) for i in informers)

    # -- reads --------------------------------------------------------------------------
    def repository(self, namespace: str, name: str, *, fresh: bool = False) -> Manifest | None:
        """From the watch (a GET when ``fresh``, e.g. before a read-modify-write of its
        status, or when the watch has not seen it)."""
        cached = None if fresh else self._cached(self.repositories, namespace, name)
        if cached is not None:
            return cached
        return self._get(REPOSITORIES, namespace, name)

    def _get(self, plural: str, namespace: str, name: str) -> Manifest | None:
        """One of our custom objects, or None when it does not exist."""
        try:
            got: Manifest = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return got

    @staticmethod
    def _cached(informers: dict[str, Informer], namespace: str, name: str) -> Manifest | None:
        informer = informers.get(namespace)
        return None if informer is None else informer.get(name)

    def secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        cached = self._cached(self.secrets, namespace, name)
        if cached is not None:
            data = cached.get("data") or {}
        else:
            try:
                found = self.core.read_namespaced_secret(name, namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            data = found.data or {}
        return {k: base64.b64decode(v) for k, v in data.items()}

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

    def pipeline(self, namespace: str, name: str) -> Manifest | None:
        return self._get(PLURAL, namespace, name)

    def warm_claims_of(self, namespace: str) -> list[Manifest]:
        """The namespace's spare claims as last watched (all of them, every Repository's)."""
        informer = self.warm_claims.get(namespace)
        return [] if informer is None else list(informer.items.values())

    def create_claim(self, namespace: str, manifest: Manifest) -> str:
        """Create it; its name (the API server's, for a ``generateName``)."""
        made = self.core.create_namespaced_persistent_volume_claim(namespace, manifest)
        return str(made.metadata.name)

    def patch_claim(self, namespace: str, name: str, patch: Manifest) -> Manifest:
        """Merge ``patch`` in (a resourceVersion in it makes it conditional: 409 if changed).

        A JSON merge patch: a list in it replaces the claim's (a strategic merge, the
        client's default for a dict, would add the Pipeline's ownerReference beside the
        Repository's, two controllers, which the API server refuses)."""
        got = self.core.patch_namespaced_persistent_volume_claim(
            name, namespace, patch, _content_type="application/merge-patch+json"
        )
        plain: Manifest = self._api.sanitize_for_serialization(got)  # type: ignore[no-untyped-call]
        return plain

    def delete_claim(self, namespace: str, name: str, resource_version: str | None) -> None:
        """Delete it if it is still that version (None: whatever it is); gone is fine."""
        options: Manifest = {}
        if resource_version:
            options["preconditions"] = {"resourceVersion": resource_version}
        try:
            self.core.delete_namespaced_persistent_volume_claim(name, namespace, body=options)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def patch_pipeline(self, namespace: str, name: str, patch: Manifest) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)

    def patch_repository_status(
        self, namespace: str, name: str, status: Manifest, *, resource_version: str = ""
    ) -> Manifest:
        """Merge ``status`` in; with ``resource_version``, only onto that version (409 if the
        Repository changed since: the caller reads again and retries)."""
        body: Manifest = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        got: Manifest = self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, REPOSITORIES, name, body
        )
        return got

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
