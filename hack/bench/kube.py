"""The benchmark's handle on the cluster: the official client (raw JSON, no models) and kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from shipway import GROUP, PLURAL, VERSION
from shipway.engine.objects import Manifest

BENCH_LABEL = "shipway.dev/bench"
"""On every namespace, PersistentVolume and Node the benchmark creates (value: the run id)."""


def default_kubeconfig() -> str:
    explicit = os.environ.get("KUBECONFIG")
    if explicit:
        return explicit
    from localkube.config import Paths

    return str(Paths.default().kubeconfig)


def kubectl_binary() -> str:
    from localkube.config import Paths

    built = Paths.default().bin / "kubectl"
    return str(built) if built.exists() else "kubectl"


@dataclass
class Kube:
    kubeconfig: str
    api: client.ApiClient
    core: Any
    """CoreV1Api, called with plain dicts and raw responses (its model types do not apply)."""
    custom: Any

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Kube:
        path = kubeconfig or default_kubeconfig()
        configuration = client.Configuration()
        config.load_kube_config(config_file=path, client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = 32
        api = client.ApiClient(configuration)
        return cls(path, api, client.CoreV1Api(api), client.CustomObjectsApi(api))

    def fresh_api(self) -> client.ApiClient:
        """A client of its own (its own connection pool), e.g. for a watch thread."""
        configuration = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration)

    # -- kubectl ---------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> str:
        proc = subprocess.run(
            [kubectl_binary(), "--kubeconfig", self.kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    # -- objects ---------------------------------------------------------------------------

    def create_namespace(self, name: str, run_id: str) -> None:
        body = {"metadata": {"name": name, "labels": {BENCH_LABEL: run_id}}}
        self.core.create_namespace(body, _preload_content=False)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.core.read_namespaced_service_account("default", name, _preload_content=False)
                return
            except ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def create_pipeline(self, namespace: str, body: Manifest) -> None:
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, _preload_content=False
        )

    def create_pod(self, namespace: str, body: Manifest) -> None:
        self.core.create_namespaced_pod(namespace, body, _preload_content=False)

    def list_json(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Manifest:
        response = fn(*args, _preload_content=False, **kwargs)
        result: Manifest = json.loads(response.data)
        return result

    def parallel(self, fn: Callable[[Manifest], None], items: Iterable[Manifest]) -> None:
        """Run ``fn`` over ``items`` on 8 threads (bulk creates); the first error is raised."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            for future in [pool.submit(fn, item) for item in items]:
                future.result()

    # -- the apiserver's own counters -------------------------------------------------------

    def request_counts(self) -> Counter[tuple[str, str, str, str, str]]:
        """``apiserver_request_total`` summed by (verb, group, resource, subresource, code)."""
        text = self.kubectl("get", "--raw", "/metrics", timeout=60)
        counts: Counter[tuple[str, str, str, str, str]] = Counter()
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, _, value = line.rpartition("} ")
            labels = _labels(labels_text[len("apiserver_request_total{") :])
            key = (
                labels.get("verb", ""),
                labels.get("group", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
                labels.get("code", ""),
            )
            counts[key] += int(float(value))
        return counts


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in text.split('",'):
        key, _, value = part.partition('="')
        labels[key.strip(",")] = value.rstrip('"')
    return labels


WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")


def write_deltas(
    before: Counter[tuple[str, str, str, str, str]],
    after: Counter[tuple[str, str, str, str, str]],
) -> dict[str, int]:
    """Write requests between two scrapes, keyed ``VERB group/resource[/subresource] code``."""
    deltas: dict[str, int] = {}
    for key, value in after.items():
        verb, group, resource, sub, code = key
        if verb not in WRITE_VERBS:
            continue
        delta = value - before.get(key, 0)
        if delta <= 0:
            continue
        name = f"{group or 'core'}/{resource}" + (f"/{sub}" if sub else "")
        deltas[f"{verb} {name} {code}"] = delta
    return dict(sorted(deltas.items(), key=lambda kv: -kv[1]))


OPERATOR_WRITES = (
    "POST core/pods ",
    "PATCH core/pods ",
    "DELETE core/pods ",
    "PATCH shipway.dev/pipelines/status ",
    "PUT shipway.dev/pipelines/status ",
    "PATCH shipway.dev/pipelines ",
    "PUT shipway.dev/pipelines ",
    "POST core/events ",
    "POST core/persistentvolumeclaims ",
)
"""The requests the operator makes (pods, status, Events, claims); the scheduler's Events are
in the events.k8s.io group, kwok's and the kubelet's status writes are ``pods/status``."""


def log_reads(
    before: Counter[tuple[str, str, str, str, str]],
    after: Counter[tuple[str, str, str, str, str]],
) -> int:
    """Container log reads (``GET pods/log``, which the API server counts under the verb
    CONNECT; any answer) between two scrapes: the archiver's, since nothing else in a bench
    reads logs."""
    return sum(
        value - before.get(key, 0)
        for key, value in after.items()
        if key[0] in ("GET", "CONNECT") and key[2] == "pods" and key[3] == "log"
    )


def operator_writes(deltas: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in deltas.items() if k.startswith(OPERATOR_WRITES)}


def write_json(path: Path, data: Manifest) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
