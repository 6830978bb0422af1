"""Apply the in-cluster add-ons (cluster DNS, the registry) and wait for them, with errors that
name the component and say what its pods are doing. Bounded waits throughout."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from localkube.addons import dns
from localkube.addons.registry import server as registry
from localkube.addons.registry import token as registrytoken
from localkube.cluster import pki
from localkube.cluster.runtime import kubectl, log, wait_for
from localkube.config import Paths
from localkube.errors import LocalkubeError

DNS_TIMEOUT = 120
REGISTRY_TIMEOUT = 180


def apply(paths: Paths, docs: list[dict[str, Any]], component: str) -> str:
    doc = {"apiVersion": "v1", "kind": "List", "items": docs}
    try:
        return kubectl(paths, "apply", "-f", "-", input=json.dumps(doc))
    except LocalkubeError as exc:
        raise LocalkubeError(f"{component}: applying its manifests failed: {exc}") from exc


def pods_report(paths: Paths, namespace: str, selector: str) -> str:
    """One line per pod (phase, waiting/terminated reasons) and its recent warning events."""
    out = kubectl(paths, "-n", namespace, "get", "pods", "-l", selector, "-o", "json", check=False)
    try:
        pods = json.loads(out)["items"] if out else []
    except ValueError:
        pods = []
    if not pods:
        return f"no pod matches {selector} in {namespace}"
    lines = []
    for pod in pods:
        name, status = pod["metadata"]["name"], pod.get("status", {})
        states = []
        for cs in status.get("containerStatuses", []):
            for kind in ("waiting", "terminated"):
                st = cs.get("state", {}).get(kind)
                if st:
                    states.append(
                        f"{cs['name']} {kind}: {st.get('reason', '')} {st.get('message', '')}"
                    )
        lines.append(f"pod {name}: {status.get('phase', '?')} " + "; ".join(states))
        events = kubectl(
            paths, "-n", namespace, "get", "events", "--field-selector",
            f"involvedObject.name={name},type=Warning", "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{'\\n'}{end}", check=False,
        )  # fmt: skip
        lines += [f"  {e}" for e in events.strip().splitlines()[-5:]]
    return "\n".join(lines)


def _rollout(
    paths: Paths, namespace: str, name: str, selector: str, *, component: str, timeout: int
) -> None:
    proc = kubectl(
        paths, "-n", namespace, "rollout", "status", f"deployment/{name}",
        f"--timeout={timeout}s", check=False,
    )  # fmt: skip
    if "successfully rolled out" not in proc:
        raise LocalkubeError(
            f"{component} ({namespace}/{name}) is not ready after {timeout}s:\n"
            + pods_report(paths, namespace, selector)
        )


def ensure_dns(paths: Paths) -> None:
    """CoreDNS answering at the kubelet's clusterDNS address."""
    component = "cluster DNS (CoreDNS)"
    out = apply(paths, dns.manifests(), component)
    if "created" in out or "configured" in out:
        log("cluster DNS (CoreDNS) configured")
    _rollout(
        paths, dns.NAMESPACE, dns.NAME, "k8s-app=kube-dns", component=component, timeout=DNS_TIMEOUT
    )


def registry_tls(paths: Paths) -> ssl.SSLContext:
    """How the host trusts the registry: the cluster CA, which issued its certificate."""
    return ssl.create_default_context(cafile=str(paths.pki / "ca.crt"))


def registry_ok(paths: Paths) -> bool:
    """It answers: 200, or with token auth on, 401 asking for a Bearer token."""
    url = f"{registry.URL}/v2/"
    try:
        with urllib.request.urlopen(url, timeout=3, context=registry_tls(paths)) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code == 401 and "Bearer" in (exc.headers.get("WWW-Authenticate") or "")
    except (OSError, ValueError):
        return False


def ensure_registry(paths: Paths, keys: pki.Pki, *, read_only: bool = False) -> None:
    """The registry Deployment rolled out and answering at its ClusterIP from the node.

    With token auth on (``registrytoken.active``) its configuration names the token service.
    """
    component = "the registry"
    token = registrytoken.token_auth() if registrytoken.active(paths) else None
    docs = registry.manifests(
        keys.crt("registry").read_bytes(),
        keys.key("registry").read_bytes(),
        read_only=read_only,
        token=token,
        jwks=registrytoken.jwks(paths) if token else None,
    )
    out = apply(paths, docs, component)
    if "created" in out or "configured" in out:
        log("the registry configured" + (" (read-only)" if read_only else ""))
    selector = "app.kubernetes.io/name=registry"
    _rollout(
        paths,
        registry.NAMESPACE,
        registry.NAME,
        selector,
        component=component,
        timeout=REGISTRY_TIMEOUT,
    )
    wait_for(
        f"the registry to answer at {registry.URL} from the node",
        lambda: registry_ok(paths),
        timeout=30,
        detail=lambda: (
            "its pod is ready but the Service address does not answer from the host: "
            "is kube-proxy running (`python -m localkube status`)?\n"
            + pods_report(paths, registry.NAMESPACE, selector)
        ),
    )
