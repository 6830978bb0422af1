"""Kube: the typed calls on pods, claims, Services, ConfigMaps, Secrets and Pipelines.

Each call is one request through :class:`~.caller.Caller`; what is already there or already
gone is an answer here (None, False or nothing), not an error, so the operator can repeat any
action after a crash. The log reads (:mod:`.logs`) and Events (:mod:`.events`) come in as
bases.
"""

from __future__ import annotations

from shipway import GROUP, PLURAL, VERSION
from shipway.controller import rest
from shipway.controller.callpool import Priority
from shipway.controller.kube.errors import KubeError
from shipway.controller.kube.events import Events
from shipway.controller.kube.logs import LogReads
from shipway.engine.objects import Manifest


class Kube(LogReads, Events):
    """Asynchronous facade over the calls Shipway needs."""

    async def create_pod(
        self, namespace: str, manifest: Manifest, priority: Priority = Priority.STEP
    ) -> Manifest | None:
        """Create a pod; None when a pod of that name exists already."""
        try:
            result: Manifest = await self._call(
                "POST", rest.core(namespace, "pods"), body=manifest, _priority=priority
            )
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise
        return result

    async def get_pod(self, namespace: str, name: str) -> Manifest | None:
        try:
            result: Manifest = await self._call("GET", rest.core(namespace, "pods", name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def create_claim(self, namespace: str, manifest: Manifest) -> bool:
        """Create a claim; False when a claim of that name exists already (whose is not
        known here: see :meth:`get_claim`)."""
        try:
            await self._call(
                "POST",
                rest.core(namespace, "persistentvolumeclaims"),
                body=manifest,
                _decode=False,
                _priority=Priority.START,  # a claim is made when a pipeline starts
            )
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def get_claim(self, namespace: str, name: str) -> Manifest | None:
        try:
            result: Manifest = await self._call(
                "GET", rest.core(namespace, "persistentvolumeclaims", name)
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def get_service(self, namespace: str, name: str) -> Manifest | None:
        try:
            result: Manifest = await self._call("GET", rest.core(namespace, "services", name))
        except KubeError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return result

    async def get_config_map(self, namespace: str, name: str) -> Manifest | None:
        """A ConfigMap (a namespace's retention settings); None if absent or not ours to read."""
        try:
            result: Manifest = await self._call(
                "GET", rest.core(namespace, "configmaps", name), _pool=self.log_pool
            )
        except KubeError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return result

    async def get_secret(self, namespace: str, name: str) -> Manifest | None:
        """A Secret of the operator's own (the builder's client certificate); None if absent."""
        try:
            result: Manifest = await self._call("GET", rest.core(namespace, "secrets", name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def create_secret(self, namespace: str, manifest: Manifest) -> None:
        try:
            await self._call(
                "POST",
                rest.core(namespace, "secrets"),
                body=manifest,
                _decode=False,
                _priority=Priority.START,
            )
        except KubeError as exc:
            if exc.status != 409:
                raise

    async def delete_secret(self, namespace: str, name: str) -> None:
        try:
            await self._call("DELETE", rest.core(namespace, "secrets", name), _decode=False)
        except KubeError as exc:
            if exc.status != 404:
                raise

    async def stop_pod(self, namespace: str, name: str) -> None:
        """Stop a running pod through the kubelet, keeping the pod and its logs.

        Lowering ``activeDeadlineSeconds`` is allowed on a live pod; the kubelet then kills it
        and marks it DeadlineExceeded.
        """
        try:
            await self._call(
                "PATCH",
                rest.core(namespace, "pods", name),
                body={"spec": {"activeDeadlineSeconds": 1}},
                content_type=rest.STRATEGIC_MERGE_PATCH,
                _decode=False,
            )
        except KubeError as exc:
            if exc.status not in (404, 422):
                raise

    async def delete_pod(self, namespace: str, name: str) -> None:
        try:
            await self._call("DELETE", rest.core(namespace, "pods", name), _decode=False)
        except KubeError as exc:
            if exc.status != 404:
                raise

    async def delete_pipeline(self, namespace: str, name: str, uid: str) -> None:
        """Delete a Pipeline, that one only (a precondition on its UID); gone already is fine.

        Background propagation: its pods and claim go through their owner references."""
        try:
            await self._call(
                "DELETE",
                rest.path("apis", GROUP, VERSION, "namespaces", namespace, PLURAL, name),
                body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"},
                _pool=self.log_pool,
                _decode=False,
            )
        except KubeError as exc:
            if exc.status not in (404, 409):
                raise

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> None:
        """Replace the status (a merge patch replaces lists whole, which is what we want)."""
        await self._call(
            "PATCH",
            rest.path("apis", GROUP, VERSION, "namespaces", namespace, PLURAL, name, "status"),
            body={"status": status},
            content_type=rest.MERGE_PATCH,
            _decode=False,
            _priority=Priority.STATUS,
        )
