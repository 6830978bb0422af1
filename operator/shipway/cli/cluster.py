"""The cluster calls of the command line, through the official client; kubectl's conventions.

A kubeconfig (``--kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``) and its context
(``--context``, else the current one) choose the cluster; ``-n`` or the context's namespace
(else ``default``) the namespace. Inside a pod without a kubeconfig, the pod's service account.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from shipway import GROUP, PLURAL, VERSION
from shipway.engine.objects import Manifest

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ClusterError(Exception):
    """A cluster call failed; the message is the API server's."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class LogNotReadyError(ClusterError):
    """The container has not started yet (or the pod is not there yet)."""


def error_from(exc: ApiException) -> ClusterError:
    message = str(exc.reason or "request failed")
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message") or message
    except (ValueError, TypeError):
        pass
    return ClusterError(int(exc.status or 0), message)


@dataclass
class Connection:
    api: client.ApiClient
    namespace: str
    context: str | None


def connect(
    kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
) -> Connection:
    """An API client and the namespace to use, chosen the way kubectl chooses them."""
    try:
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=kubeconfig
        )
        chosen = active
        if context is not None:
            chosen = next((c for c in contexts if c.get("name") == context), None)
            if chosen is None:
                raise ClusterError(0, f"context {context!r} not found in the kubeconfig")
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, persist_config=False
        )
        default = (chosen or {}).get("context", {}).get("namespace") or "default"
        return Connection(api, namespace or default, (chosen or {}).get("name"))
    except ConfigException as exc:
        if kubeconfig or context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise ClusterError(0, f"no usable kubeconfig: {exc}") from None
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    default = "default"
    if IN_CLUSTER_NAMESPACE.is_file():
        default = IN_CLUSTER_NAMESPACE.read_text().strip() or default
    return Connection(client.ApiClient(configuration), namespace or default, None)


def _data(response: Any) -> Any:
    raw = response.data
    return json.loads(raw) if raw else None


def _call(call: Callable[..., Any], *args: Any, absent: Container[int] = (), **kwargs: Any) -> Any:
    """One client call's JSON answer; None when its status is one of ``absent``; any other
    refusal as a ClusterError with the API server's message."""
    try:
        response = call(*args, _preload_content=False, **kwargs)
    except ApiException as exc:
        if exc.status in absent:
            return None
        raise error_from(exc) from None
    return _data(response)


class PipelineApi:
    """Pipelines and their pods' logs in one namespace."""

    def __init__(self, connection: Connection) -> None:
        self.namespace = connection.namespace
        self.client = connection.api
        self.custom = client.CustomObjectsApi(connection.api)
        self.core = client.CoreV1Api(connection.api)

    def create(self, manifest: Manifest) -> Manifest:
        result: Manifest = _call(
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            manifest,
        )
        return result

    def get(self, name: str) -> Manifest | None:
        result: Manifest | None = _call(
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            absent=(404,),
        )
        return result

    def list(self, *, all_namespaces: bool = False, selector: str | None = None) -> list[Manifest]:
        if all_namespaces:
            data = _call(
                self.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
                label_selector=selector,
            )
        else:
            data = _call(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                label_selector=selector,
            )
        items: list[Manifest] = (data or {}).get("items") or []
        return items

    def cancel(self, name: str) -> Manifest:
        """Merge-patch ``spec.cancel: true``; the operator stops the pipeline."""
        result: Manifest = _call(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            {"spec": {"cancel": True}},
            _content_type="application/merge-patch+json",
        )
        return result

    def watch(self, name: str, resource_version: str | None, timeout: int = 60) -> Iterator[Any]:
        """Events (type, object) of one Pipeline from ``resource_version``; ends after ``timeout``."""
        watcher = watch.Watch()  # type: ignore[no-untyped-call]
        kwargs: dict[str, Any] = {
            "field_selector": f"metadata.name={name}",
            "timeout_seconds": timeout,
            "allow_watch_bookmarks": False,
        }
        if resource_version:
            kwargs["resource_version"] = resource_version
        try:
            yield from watcher.stream(  # type: ignore[no-untyped-call]
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                **kwargs,
            )
        except ApiException as exc:
            raise error_from(exc) from None
        finally:
            watcher.stop()  # type: ignore[no-untyped-call]

    def open_log(self, pod: str, container: str, *, follow: bool) -> Any:
        """The raw log response (a urllib3 response); LogNotReady while it cannot be read yet."""
        try:
            return self.core.read_namespaced_pod_log(
                pod, self.namespace, container=container, follow=follow, _preload_content=False
            )
        except HTTPError as exc:  # in a log thread: a line, never a traceback
            raise ClusterError(0, f"cannot reach the cluster: {exc}") from None
        except ApiException as exc:
            error = error_from(exc)
            text = str(error).lower()
            if exc.status == 404 or (
                exc.status == 400
                and (
                    "waiting to start" in text
                    or "podinitializing" in text
                    or "containercreating" in text
                    or "is not available" in text
                )
            ):
                raise LogNotReadyError(error.status, str(error)) from None
            raise error from None

    def read_pod(self, name: str) -> Manifest | None:
        result: Manifest | None = _call(
            self.core.read_namespaced_pod, name, self.namespace, absent=(404,)
        )
        return result

    def read_secret(self, name: str) -> Manifest | None:
        """A Secret of the namespace, for masking; None when absent or not the user's to read."""
        result: Manifest | None = _call(
            self.core.read_namespaced_secret, name, self.namespace, absent=(403, 404)
        )
        return result

    def attach_stdin(self, pod: str, container: str) -> Any:
        """A websocket to the container's standard input (``pods/attach``, stdin only)."""
        from kubernetes.stream import stream

        try:
            return stream(
                self.core.connect_get_namespaced_pod_attach,
                pod,
                self.namespace,
                container=container,
                stdin=True,
                stdout=False,
                stderr=False,
                tty=False,
                _preload_content=False,
            )
        except ApiException as exc:
            raise error_from(exc) from None

    def get_path(self, path: str, query: Mapping[str, str]) -> Any:
        """GET any path of the API server (an aggregated API's): its JSON, None for 404."""
        request = self.client.param_serialize(
            "GET",
            path,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*request)
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise error_from(exc) from None
        if response.status == 404:
            return None
        if not 200 <= response.status <= 299:
            raise error_from(
                ApiException(status=response.status, reason=response.reason, body=response.data)
            )
        return _data(response)

    def read_log(self, pod: str, container: str) -> str:
        response = self.open_log(pod, container, follow=False)
        try:
            data: bytes = response.data
            return data.decode("utf-8", errors="replace")
        finally:
            response.release_conn()
