"""The validating admission webhook: a bad Pipeline is refused at ``kubectl apply``.

It runs :func:`shipway.compiler.document.review`, the compiler ``shipway validate`` and the operator
use, so all three say the same thing. kopf serves it (``@kopf.on.validate``, its aiohttp
``WebhookServer`` with TLS and certificate reloading); only CREATE is reviewed, since the spec
cannot change afterwards (the admission policy beside the CRD keeps it immutable) and reviewing
UPDATE would block metadata edits of Pipelines created while the webhook was away.

Where the configuration comes from:

* in-cluster, the Helm chart creates the Service, the certificate and a
  ValidatingWebhookConfiguration scoped to the release's namespaces; the operator only serves
  (``--webhook-port``, ``--webhook-cert``, ``--webhook-key``) and needs no cluster-wide write;
* outside the cluster (development), ``--webhook-url`` makes the operator issue itself a
  certificate and keep its own configuration, scoped to its ``-n`` namespaces (see
  :mod:`shipway.controller.webhookconfig`), deleted again when it stops.

The operator still validates every Pipeline itself: ones created while the webhook was absent
are marked Failed with the same message.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kopf

from shipway import GROUP, PLURAL, VERSION
from shipway.compiler.document import check_metadata, display_name, problem_lines, review
from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.limits import structure_errors
from shipway.controller import certs, webhookconfig
from shipway.engine import docker
from shipway.engine.docker import DockerConfig

log = logging.getLogger("shipway.admission")
DEFAULT_PORT = 9443

_reviewers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="admission")
"""Compiling a 1000-step spec takes a CPU-bound ~0.1 s: off the event loop (which serves
the watches, the health probe and the other reviews), two at a time."""


@dataclass(frozen=True)
class WebhookOptions:
    """How this operator serves admission reviews (``shipway operator --webhook-*``)."""

    port: int = DEFAULT_PORT
    url: str | None = None
    """Where the API server reaches this process; set, the operator keeps its own
    configuration (development mode), else the Helm chart provides it."""
    cert: str | None = None
    key: str | None = None
    failure_policy: str = "Fail"
    config_name: str | None = None
    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    listen: str = "0.0.0.0"


def options(
    *,
    port: int | None,
    url: str | None,
    cert: str | None,
    key: str | None,
    failure_policy: str,
    config_name: str | None,
    namespaces: tuple[str, ...],
    clusterwide: bool,
) -> WebhookOptions:
    """Check and complete the command line's webhook flags; ValueError says what is wrong."""
    if (cert is None) != (key is None):
        raise ValueError("--webhook-cert and --webhook-key go together")
    if failure_policy not in webhookconfig.FAILURE_POLICIES:
        raise ValueError(f"--webhook-failure-policy {failure_policy}: want Fail or Ignore")
    listen = "0.0.0.0"
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"--webhook-url {url}: the API server needs https://HOST[:PORT]")
        port = port or parts.port or 443
        if _is_ip(parts.hostname) and ipaddress.ip_address(parts.hostname).is_loopback:
            listen = parts.hostname  # a host URL on the API server's machine: stay local
    elif cert is None:
        raise ValueError(
            "--webhook-port without --webhook-url serves the configuration the Helm chart "
            "made and needs its certificate: give --webhook-cert and --webhook-key"
        )
    return WebhookOptions(
        port=port or DEFAULT_PORT,
        url=url,
        cert=cert,
        key=key,
        failure_policy=failure_policy,
        config_name=config_name,
        namespaces=namespaces,
        clusterwide=clusterwide,
        listen=listen,
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def validate_pipeline(
    body: kopf.Body, docker_config: DockerConfig | None = None, **_: Any
) -> None:
    """Refuse the Pipeline with the lines ``shipway validate`` would print, if any, then
    with what this operator's configuration refuses (``add_docker`` where it is off)."""
    meta: dict[str, Any] = dict(body.get("metadata") or {})
    doc = {"metadata": meta, "spec": body.get("spec")}
    try:
        loop = asyncio.get_running_loop()
        problem = await loop.run_in_executor(_reviewers, review, doc)
    except Exception as exc:  # a bug of ours: say so rather than let a spec through unchecked
        log.exception("reviewing %s failed", meta.get("name"))
        raise kopf.AdmissionError(f"shipway could not check this Pipeline: {exc!r}") from None
    if problem is None and docker_config is not None:
        problem = docker_refusal(doc, docker_config)
    if problem is not None:
        raise kopf.AdmissionError(problem, code=422)


def docker_refusal(doc: Mapping[str, Any], config: DockerConfig) -> str | None:
    """:func:`shipway.engine.docker.refusal` of a valid Pipeline, as the webhook says it."""
    services = (doc.get("spec") or {}).get("services") or {}
    wanting = [
        str(name)
        for name, service in services.items()
        if isinstance(service, Mapping) and service.get("add_docker") is True
    ]
    namespace = str((doc.get("metadata") or {}).get("namespace") or "")
    refused = docker.refusal(namespace, wanting, config)
    if refused is None:
        return None
    return f"Pipeline {display_name(doc)} is refused by this cluster's operator:\n  {refused}"


def register(opts: WebhookOptions, docker_config: DockerConfig | None = None) -> None:
    """Register the review and the server with kopf (before ``kopf.run``)."""

    async def validate(body: kopf.Body, **kwargs: Any) -> None:
        await validate_pipeline(body, docker_config, **kwargs)

    kopf.on.validate(GROUP, VERSION, PLURAL, id=webhookconfig.HANDLER_ID, operations=["CREATE"])(
        validate
    )

    @kopf.on.startup()
    async def serve_admission(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.admission.managed = None  # kopf's own would cover every namespace
        settings.admission.server = server(opts)
        log.info("admission webhook on %s:%d", opts.listen, opts.port)


def server(opts: WebhookOptions) -> Any:
    if opts.url is None:
        inner = kopf.WebhookServer(
            addr=opts.listen, port=opts.port, certfile=opts.cert, pkeyfile=opts.key
        )
        return ScreeningServer(inner)
    host = urlsplit(opts.url).hostname or "localhost"
    if opts.cert is not None:
        cert, key = opts.cert, opts.key
    else:
        made = certs.self_signed([host], Path(tempfile.mkdtemp(prefix="shipway-webhook-")))
        cert, key = str(made.cert), str(made.key)
    inner = kopf.WebhookServer(
        addr=opts.listen,
        port=opts.port,
        path=urlsplit(opts.url).path or None,
        host=host,
        certfile=cert,
        pkeyfile=key,
        cafile=cert,
    )
    name = opts.config_name or webhookconfig.configuration_name(
        opts.namespaces, opts.clusterwide, opts.url
    )
    manifest = functools.partial(
        webhookconfig.configuration,
        name,
        namespaces=opts.namespaces,
        clusterwide=opts.clusterwide,
        failure_policy=opts.failure_policy,
    )
    return ScreeningServer(inner, _ManagedConfiguration(name, manifest, opts.url))


Review = dict[str, Any]
WebhookFn = Callable[..., Awaitable[Review]]


def screened(fn: WebhookFn) -> WebhookFn:
    """kopf's review function, after a check of the nesting of the object under review.

    kopf copies and diffs the object recursively before any handler runs, so a spec nested a
    few hundred levels deep made it answer 500. Such a spec is refused here, with the lines
    ``shipway validate`` prints for it, before kopf sees it.
    """

    async def review_request(request: Review, **kwargs: Any) -> Review:
        payload = request.get("request") or {}
        body = payload.get("object")
        if isinstance(body, Mapping) and (deep := structure_errors(body.get("spec"))):
            doc = {"metadata": body.get("metadata") or {}}
            errors = [*check_metadata(doc), *deep]  # as compile_doc orders them
            message = "\n".join(problem_lines(doc, InvalidSpecError(errors)))
            return {
                "apiVersion": request.get("apiVersion", "admission.k8s.io/v1"),
                "kind": "AdmissionReview",
                "response": {
                    "uid": payload.get("uid", ""),
                    "allowed": False,
                    "status": {"message": message, "code": 422},
                },
            }
        return await fn(request, **kwargs)

    return review_request


class ScreeningServer:
    """kopf's server with :func:`screened` reviews, and optionally our own configuration."""

    def __init__(self, inner: Any, managed: _ManagedConfiguration | None = None) -> None:
        self.inner, self.managed = inner, managed

    async def __aenter__(self) -> ScreeningServer:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.managed is not None:
                await self.managed.remove()
        finally:
            await self.inner.__aexit__(*exc)

    async def __call__(self, fn: WebhookFn) -> AsyncIterator[Mapping[str, Any]]:
        async for client_config in self.inner(screened(fn)):
            if self.managed is None:
                yield client_config
            else:
                yield await self.managed.point_at(client_config)


class _ManagedConfiguration:
    """The configuration of development mode, applied while the server serves.

    A stop that comes while the configuration is being applied (the operator stopped just
    after it started listening) still removes it: the apply in flight finishes first, shielded
    from the cancellation, then the delete follows. Otherwise the configuration, with
    failurePolicy Fail, would outlive the operator and refuse its namespaces' Pipelines.
    """

    def __init__(
        self, name: str, manifest: Callable[[Mapping[str, Any]], dict[str, Any]], url: str
    ) -> None:
        self.name, self.manifest, self.url = name, manifest, url
        self.api: Any = _ConfigurationApi(name)
        self.applying: asyncio.Future[None] | None = None

    async def point_at(self, client_config: Mapping[str, Any]) -> Mapping[str, Any]:
        # kopf's URL names the listening address; the API server is told ours.
        reachable = {**client_config, "url": self.url}
        self.applying = asyncio.ensure_future(
            asyncio.to_thread(self.api.apply, self.manifest(reachable))
        )
        await asyncio.shield(self.applying)
        log.info("webhook configuration %s points at %s", self.name, self.url)
        return reachable

    async def remove(self) -> None:
        if self.applying is None:
            return  # never tried: nothing of ours to remove
        # Done, failed or not: a failed apply may have created it all the same.
        await asyncio.wait([self.applying])
        await asyncio.to_thread(self.api.delete)
        log.info("removed the webhook configuration %s", self.name)


class _ConfigurationApi:
    """Create-or-replace and delete of one ValidatingWebhookConfiguration."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _client(self) -> Any:
        from kubernetes import client

        return client.AdmissionregistrationV1Api()

    def apply(self, manifest: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        api = self._client()
        try:
            api.create_validating_webhook_configuration(manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = api.read_validating_webhook_configuration(self.name)
            manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
            api.replace_validating_webhook_configuration(self.name, manifest)

    def delete(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._client().delete_validating_webhook_configuration(self.name)
        except ApiException as exc:
            if exc.status != 404:
                raise
