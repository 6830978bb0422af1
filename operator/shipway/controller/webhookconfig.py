"""The ValidatingWebhookConfiguration of an operator that manages its own (development mode).

kopf's managed configuration covers every namespace, so the operator a test session or a
developer runs for ``-n 'e2e-1234-*'`` would review, and could block, everyone's Pipelines on a
shared cluster. This one is scoped like the operator: exact namespaces through a
``namespaceSelector``, kopf's glob patterns (``e2e-*``, ``!kube-*``) through a CEL
``matchCondition`` on the request's namespace, nothing with ``-A``. Pure: the manifest only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shipway import GROUP, PLURAL, VERSION

HANDLER_ID = "validate-pipeline"
"""kopf's handler id, also the URL path the webhook is served at: /validate-pipeline."""
WEBHOOK_NAME = f"validate.{PLURAL}.{GROUP}"
FAILURE_POLICIES = ("Fail", "Ignore")
TIMEOUT_SECONDS = 10
_GLOB = re.compile(r"[*?\[\]!,]")


def configuration_name(namespaces: Sequence[str], clusterwide: bool, url: str) -> str:
    """One name per scope and URL: two operators on different namespaces never share one."""
    scope = "*" if clusterwide else ",".join(sorted(namespaces))
    digest = hashlib.sha256(f"{scope} {url}".encode()).hexdigest()[:10]
    return f"shipway-{digest}"


def _glob_regex(glob: str) -> str:
    """fnmatch's glob syntax as an anchored RE2 expression (what CEL's matches() takes)."""
    out, i = [], 0
    while i < len(glob):
        char = glob[i]
        end = glob.find("]", i + 2) if char == "[" else -1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif end != -1:
            body = glob[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "^" + "".join(out) + "$"


def _matches(glob: str) -> str:
    return f"request.namespace.matches('{_glob_regex(glob)}')".replace("\\", "\\\\")


def pattern_expression(pattern: str) -> str:
    """CEL for one of kopf's namespace patterns, with kopf's semantics (its match_namespace):
    comma-separated globs, ``!`` excludes, a leading exclusion implies a leading ``*``."""
    globs = [glob.strip() for glob in pattern.split(",")]
    if not globs or globs[0].startswith("!"):
        globs.insert(0, "*")
    first = _matches(globs[0])
    expression = first
    for glob in globs[1:]:
        if glob.startswith("!"):
            expression = f"({expression}) && !{_matches(glob.lstrip('!'))}"
        else:
            expression = f"({expression}) || ({first} && {_matches(glob)})"
    return expression


def scope(namespaces: Sequence[str], clusterwide: bool) -> dict[str, Any]:
    """``namespaceSelector`` or ``matchConditions`` limiting the webhook to these namespaces."""
    if clusterwide:
        return {}
    if not any(_GLOB.search(ns) for ns in namespaces):
        selector = {"key": "kubernetes.io/metadata.name", "operator": "In"}
        return {
            "namespaceSelector": {"matchExpressions": [{**selector, "values": sorted(namespaces)}]}
        }
    expression = " || ".join(f"({pattern_expression(ns)})" for ns in namespaces)
    return {"matchConditions": [{"name": "operator-namespaces", "expression": expression}]}


def configuration(
    name: str,
    client_config: Mapping[str, Any],
    namespaces: Sequence[str],
    clusterwide: bool,
    *,
    failure_policy: str,
) -> dict[str, Any]:
    """The whole ValidatingWebhookConfiguration: Pipelines' CREATE, in these namespaces."""
    if failure_policy not in FAILURE_POLICIES:
        raise ValueError(f"failure policy {failure_policy!r}: want Fail or Ignore")
    url = str(client_config["url"]).rstrip("/")
    client = {"url": f"{url}/{HANDLER_ID}"}
    if client_config.get("caBundle"):
        client["caBundle"] = str(client_config["caBundle"])
    webhook = {
        "name": WEBHOOK_NAME,
        "clientConfig": client,
        "rules": [
            {
                "apiGroups": [GROUP],
                "apiVersions": [VERSION],
                "resources": [PLURAL],
                "operations": ["CREATE"],
                "scope": "Namespaced",
            }
        ],
        "failurePolicy": failure_policy,
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": TIMEOUT_SECONDS,
        **scope(namespaces, clusterwide),
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "shipway-operator"},
        },
        "webhooks": [webhook],
    }
