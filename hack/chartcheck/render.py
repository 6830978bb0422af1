"""``helm lint`` and ``helm template`` of every value set, and the checks of what renders."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from chartcheck.cases import BAD, BUILDER, EXPECT, GOOD, builder_facts
from chartcheck.values import CHART, KUBE_VERSION


def _helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False)


def _sets(values: list[str]) -> list[str]:
    """``--set`` for each value; entries that start with ``--`` are helm flags, passed as is."""
    return [
        arg
        for value in values
        for arg in ((value,) if value.startswith("--") else ("--set", value))
    ]


def check_helm(helm: str) -> list[str]:
    problems: list[str] = []
    chart = str(CHART)
    common = ["--kube-version", KUBE_VERSION, "--namespace", "shipway"]
    for name, values in GOOD:
        if not any(v.startswith("--") for v in values):  # helm lint knows no --api-versions
            lint = _helm(
                helm, "lint", "--strict", chart, "--kube-version", KUBE_VERSION, *_sets(values)
            )
            if lint.returncode != 0:
                problems.append(f"helm lint ({name}) failed:\n{lint.stdout}{lint.stderr}")
        out = _helm(helm, "template", "shipway", chart, *common, *_sets(values))
        if out.returncode != 0:
            problems.append(f"helm template ({name}) failed:\n{out.stderr}")
            continue
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        if not any(d.get("kind") == "Deployment" for d in docs):
            problems.append(f"helm template ({name}) rendered no Deployment")
        if name in BUILDER and builder_facts(docs) != BUILDER[name]:
            problems.append(
                f"helm template ({name}): builder {builder_facts(docs)}, expected {BUILDER[name]}"
            )
        problems += [
            f"helm template ({name}) lacks {text!r}"
            for text in EXPECT.get(name, [])
            if text not in out.stdout
        ]
    # helm built as its release is knows its Kubernetes version: no --kube-version needed.
    bare = _helm(helm, "template", "shipway", chart, "--namespace", "shipway")
    if bare.returncode != 0:
        problems.append(f"helm template without --kube-version failed:\n{bare.stderr}")
    for name, values, expected in BAD:
        out = _helm(helm, "template", "shipway", chart, *common, *_sets(values))
        if out.returncode == 0:
            problems.append(f"helm template accepted {name} ({' '.join(values)})")
        elif expected not in out.stderr:
            problems.append(
                f"helm template refused {name} without saying {expected!r}:\n{out.stderr}"
            )
    return problems


def _render(helm: str, values: list[str]) -> list[dict[str, Any]]:
    common = ["--kube-version", KUBE_VERSION, "--namespace", "shipway"]
    out = _helm(helm, "template", "shipway", str(CHART), *common, *_sets(values))
    if out.returncode != 0:
        raise AssertionError(out.stderr)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _webhook_scope(docs: list[dict[str, Any]]) -> list[str] | None:
    """The namespaces the rendered webhook reviews (None: every namespace)."""
    (config,) = [d for d in docs if d["kind"] == "ValidatingWebhookConfiguration"]
    (hook,) = config["webhooks"]
    selector = hook.get("namespaceSelector")
    if selector is None:
        return None
    (requirement,) = selector["matchExpressions"]
    assert requirement["key"] == "kubernetes.io/metadata.name"
    assert requirement["operator"] == "In"
    return list(requirement["values"])


def _tls_secret(doc: dict[str, Any], component: str) -> bool:
    labels = doc["metadata"].get("labels") or {}
    return (
        doc["kind"] == "Secret"
        and doc.get("type") == "kubernetes.io/tls"
        and labels.get("app.kubernetes.io/component") == component
    )


def check_history_api(helm: str) -> list[str]:
    """The APIService reaches the operator's read API, trusts its certificate, and the
    operator is told where its certificate is; disabled, none of it is rendered."""
    from shipway.history.api import GROUP, VERSION

    docs = _render(helm, [])
    (service,) = [d for d in docs if d["kind"] == "APIService"]
    (secret,) = [d for d in docs if _tls_secret(d, "history-api")]
    (svc,) = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-history-api")
    ]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    expected = {
        "APIService name": (service["metadata"]["name"], f"{VERSION}.{GROUP}"),
        "group": (service["spec"]["group"], GROUP),
        "caBundle (the Secret's CA)": (service["spec"]["caBundle"], secret["data"]["ca.crt"]),
        "service": (service["spec"]["service"]["name"], svc["metadata"]["name"]),
        "port": (env.get("SHIPWAY_HISTORY_API_PORT"), str(ports.get("history-api"))),
        "certificate mounted": (
            str(env.get("SHIPWAY_HISTORY_API_CERT")).rsplit("/", 1)[0] in mounts,
            True,
        ),
    }
    problems = [
        f"history API: {what} is {got!r}, expected {want!r}"
        for what, (got, want) in expected.items()
        if got != want
    ]
    off = _render(helm, ["history.api.enabled=false"])
    left = [
        d["metadata"]["name"]
        for d in off
        if d["kind"] == "APIService"
        or any(m in d["metadata"]["name"] for m in (".history-", "-history-api"))
    ]
    if left:
        problems.append(f"history API: history.api.enabled=false still renders {left}")
    return problems


def check_webhook(helm: str) -> list[str]:
    """The webhook reaches the operator's handler, trusts its certificate, and is scoped."""
    from shipway.controller.webhookconfig import HANDLER_ID, WEBHOOK_NAME

    problems: list[str] = []
    docs = _render(helm, [])
    (config,) = [d for d in docs if d["kind"] == "ValidatingWebhookConfiguration"]
    (hook,) = config["webhooks"]
    (secret,) = [d for d in docs if _tls_secret(d, "webhook")]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    expected = {
        "webhook name": (hook["name"], WEBHOOK_NAME),
        "path (kopf's handler id)": (hook["clientConfig"]["service"]["path"], f"/{HANDLER_ID}"),
        "caBundle (the Secret's CA)": (hook["clientConfig"]["caBundle"], secret["data"]["ca.crt"]),
        "operations": (hook["rules"][0]["operations"], ["CREATE"]),
        "failure policy": (hook["failurePolicy"], "Fail"),
        "namespaced scope": (_webhook_scope(docs), ["shipway"]),
        "several namespaces": (
            _webhook_scope(_render(helm, ["watchNamespaces={team-a,team-b}"])),
            ["team-a", "team-b"],
        ),
        "all namespaces": (_webhook_scope(_render(helm, ["allNamespaces=true"])), None),
        "operator serves it": ("--webhook-port=9443" in args, True),
    }
    for what, (got, want) in expected.items():
        if got != want:
            problems.append(f"webhook {what}: rendered {got!r}, want {want!r}")
    off = _render(helm, ["webhook.enabled=false"])
    kinds = {d["kind"] for d in off}
    if "ValidatingWebhookConfiguration" in kinds or any(
        a.startswith("--webhook") for d in off if d["kind"] == "Deployment"
        for a in d["spec"]["template"]["spec"]["containers"][0]["args"]
    ):  # fmt: skip
        problems.append("webhook.enabled=false still renders the webhook")
    return problems
