"""Checks of the Helm chart (``make chart-check``), and the values table of ``docs/helm.md``.

* every key in ``charts/shipway/values.yaml`` has a comment; keys documented with ``# --``
  (helm-docs' convention) are rows of the table in ``docs/helm.md`` (installing with Helm),
  between ``<!-- values-table:start -->`` and ``<!-- values-table:end -->``; ``--write``
  regenerates it, the check fails when it drifts;
* ``helm lint --strict`` and ``helm template`` succeed for each supported shape of values
  (namespaced, several namespaces, all namespaces, HA, no peering, no RBAC) and fail, with
  the chart's own message, for the combinations it refuses.

Usage: ``python hack/chart_check.py [--helm PATH] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "shipway"
VALUES = CHART / "values.yaml"
HELM_DOC = ROOT / "docs" / "helm.md"
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"
KUBE_VERSION = "1.35.0"

KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s|$)")

#: Tells ``helm template`` the cluster serves prometheus-operator's ServiceMonitor.
MONITORING = "monitoring.coreos.com/v1/ServiceMonitor"
#: ... or cert-manager's Certificate.
CERT_MANAGER = "cert-manager.io/v1/Certificate"

#: (name, --set arguments) that must render.
GOOD: list[tuple[str, list[str]]] = [
    ("defaults", []),
    ("no metrics", ["metrics.enabled=false"]),
    ("ServiceMonitor", ["metrics.serviceMonitor.enabled=true", f"--api-versions={MONITORING}"]),
    ("several namespaces", ["watchNamespaces={team-a,team-b}"]),
    ("all namespaces", ["allNamespaces=true", "stepServiceAccount.namespaces={team-a}"]),
    ("high availability", ["replicaCount=3", "history.postgres.urlSecret=history-db"]),
    ("no history", ["history.enabled=false", "replicaCount=2"]),
    ("no retention, no masking", ["retention.enabled=false", "history.maskSecrets=false"]),
    ("no peering", ["peering.enabled=false"]),
    (
        "own RBAC and accounts",
        [
            "rbac.create=false",
            "serviceAccount.create=false",
            "stepServiceAccount.create=false",
            "admissionPolicy.create=false",
        ],
    ),
    ("restricted steps", ["stepPods.restricted=true", "stepServiceAccount.name="]),
    (
        "dashboard behind a proxy",
        [
            "dashboard.enabled=true",
            "dashboard.tlsSecret=dash-tls",
            "history.postgres.urlSecret=history-db",
            "dashboard.authProxy.caSecret=proxy-ca",
            "dashboard.authProxy.names={oauth2-proxy}",
        ],
    ),
    ("builder deployed", ["buildkit.deploy=true"]),
    ("webhook receiver", ["triggers.enabled=true", "watchNamespaces={team-a,team-b}"]),
    (
        "webhook receiver behind an Ingress, all namespaces",
        [
            "allNamespaces=true",
            "triggers.enabled=true",
            "triggers.namespaces={ci}",
            "triggers.replicas=3",
            "triggers.ingress.enabled=true",
            "triggers.ingress.host=hooks.example.com",
            "triggers.ingress.tlsSecret=hooks-tls",
            "triggers.runUrl=https://ci.example.com/runs/{namespace}/{name}",
        ],
    ),
    (
        "rootless builder in its own namespace",
        [
            "buildkit.deploy=true",
            "buildkit.mode=rootless",
            "buildkit.namespace=shipway-buildkit",
            "buildkit.networkPolicy.namespaces={team-a}",
        ],
    ),
    (
        "privileged builder with given certificates and a mirror",
        [
            "buildkit.deploy=true",
            "buildkit.mode=privileged",
            "buildkit.serverSecret=bk-tls",
            "buildkit.clientSecret=bk-client",
            "buildkit.registries.docker\\.io.mirrors={mirror.example:5000}",
        ],
    ),
    ("existing builder", ["buildkit.address=tcp://buildkitd.ci:1234", "buildkit.clientSecret=bk"]),
    (
        "local registry",
        [
            "registry.url=registry.localkube-system.svc.cluster.local",
            "registry.caConfigMap=kube-root-ca.crt",
            "registry.pushSecret=registry-push",
        ],
    ),
    ("registry with inline CA", ["registry.url=registry.example.com:5000/ci", "registry.ca=PEM"]),
    (
        "per-namespace registry rights",
        [
            "registry.url=registry.example.com/ci",
            "registry.credentialSecret=registry-key",
            "registry.tokenService.deploy=true",
            "registry.tokenService.signingKeySecret=registry-signing",
            "registry.tokenService.tlsSecret=registry-token-tls",
        ],
    ),
    ("insecure registry", ["registry.url=10.0.0.5:5000", "registry.insecure=true"]),
    ("no webhook", ["webhook.enabled=false"]),
    ("webhook that admits while down", ["webhook.failurePolicy=Ignore"]),
    (
        "webhook certificate from cert-manager",
        ["webhook.certificate.source=cert-manager", f"--api-versions={CERT_MANAGER}"],
    ),
    (
        "step accounts and limits",
        [
            "stepServiceAccount.allowed={builder,deployer}",
            "pipelines.defaultTimeout=1h30m",
            "pipelines.maxRunningPods=0",
            "pipelines.maxNamespacePods=0",
            "stepPods.unschedulableGrace=2m",
            "stepPods.retryGrace=30s",
        ],
    ),
    (
        "docker daemons",
        [
            "docker.enabled=true",
            "docker.namespaces={ci,tools}",
            "docker.mirror=mirror.example:5000",
            "docker.mirrorCaConfigMap=kube-root-ca.crt",
        ],
    ),
]
#: Text the rendering of a good value set must contain (what the values promise to do).
EXPECT: dict[str, list[str]] = {
    "dashboard behind a proxy": [
        "- --trusted-proxy=oauth2-proxy",
        "verbs: [impersonate]",
        "secretName: proxy-ca",
    ],
    "local registry": [
        'name: SHIPWAY_REGISTRY_URL\n              value: "registry.localkube-system.svc.cluster.local"',
        "name: SHIPWAY_REGISTRY_CA_FILE",
        "name: kube-root-ca.crt",
        "secretName: registry-push",
        "name: SHIPWAY_REGISTRY_AUTH_FILE",
    ],
    "webhook receiver": [
        "- --namespace=team-a\n            - --namespace=team-b\n            - --address=0.0.0.0",
        "name: shipway-triggers\n  namespace: team-b",
        "replicas: 2",
        "readOnlyRootFilesystem: true",
    ],
    "webhook receiver behind an Ingress, all namespaces": [
        "- --namespace=ci\n            - --address=0.0.0.0",
        "name: shipway-triggers\n  namespace: ci",
        "replicas: 3",
        "- --run-url=https://ci.example.com/runs/{namespace}/{name}",
        "secretName: hooks-tls",
        "path: /hooks/",
    ],
    "registry with inline CA": ["name: shipway-registry-ca", 'ca.crt: "PEM"'],
    "insecure registry": ['name: SHIPWAY_REGISTRY_INSECURE\n              value: "true"'],
    "docker daemons": [
        'name: SHIPWAY_DOCKER\n              value: "true"',
        'name: SHIPWAY_DOCKER_NAMESPACES\n              value: "ci,tools"',
        'name: SHIPWAY_DOCKER_IMAGE\n              value: "docker:20.10-dind"',
        'name: SHIPWAY_DOCKER_MIRROR\n              value: "mirror.example:5000"',
        'name: SHIPWAY_DOCKER_CA_CONFIGMAP\n              value: "kube-root-ca.crt"',
    ],
    "step accounts and limits": [
        'name: SHIPWAY_MAX_NAMESPACE_PODS\n              value: "0"',
        'name: SHIPWAY_RETRY_GRACE\n              value: "30s"',
    ],
}
#: (name, --set arguments, text the error must contain) that must be refused.
BAD: list[tuple[str, list[str], str]] = [
    ("replicas without peering", ["replicaCount=2", "peering.enabled=false"], "needs peering.enabled=true"),
    ("both namespace modes", ["allNamespaces=true", "watchNamespaces={a}"], "leave watchNamespaces empty"),
    ("no replicas", ["replicaCount=0"], "/replicaCount"),
    ("replicas on SQLite", ["replicaCount=2"], "set history.postgres.urlSecret"),
    ("dashboard on SQLite", ["dashboard.enabled=true", "dashboard.tlsSecret=t"], "set history.postgres.urlSecret"),
    ("dashboard without TLS", ["dashboard.enabled=true", "history.postgres.urlSecret=h"], "needs dashboard.tlsSecret"),
    ("webhook receiver for every namespace", ["allNamespaces=true", "triggers.enabled=true"], "list the namespaces whose Repositories it serves"),
    ("webhook receiver's Ingress without a host", ["triggers.enabled=true", "triggers.ingress.enabled=true"], "needs triggers.ingress.host"),
    ("bad history age", ["history.maxAge=90 days"], "/history/maxAge"),
    ("negative retention", ["retention.succeeded=-1"], "/retention/succeeded"),
    ("unknown key", ["replicas=2"], "additional properties 'replicas' not allowed"),
    ("bad namespace name", ["watchNamespaces={Team_A}"], "/watchNamespaces/0"),
    ("bad pull policy", ["image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    ("registry settings without url", ["registry.pushSecret=push"], "set registry.url too"),
    ("credentials without a registry", ["registry.credentialSecret=k"], "set registry.url too"),
    ("token service without its keys", ["registry.url=r.example.com", "registry.tokenService.deploy=true"], "registry.tokenService.deploy needs"),
    ("two registry CAs", ["registry.url=r.example.com", "registry.ca=PEM", "registry.caConfigMap=c"], "set only one"),
    ("insecure registry with a CA", ["registry.url=r.example.com", "registry.ca=PEM", "registry.insecure=true"], "registry.insecure skips TLS verification"),
    ("registry url with a scheme", ["registry.url=https://r.example.com"], "/registry/url"),
    ("bad default timeout", ["pipelines.defaultTimeout=5 hours"], "/pipelines/defaultTimeout"),
    ("negative namespace cap", ["pipelines.maxNamespacePods=-1"], "/pipelines/maxNamespacePods"),
    ("retry grace of nothing", ["stepPods.retryGrace=0"], "/stepPods/retryGrace"),
    ("ServiceMonitor without its CRD", ["metrics.serviceMonitor.enabled=true"], "needs the prometheus-operator CRDs"),
    ("builder deployed and existing", ["buildkit.deploy=true", "buildkit.address=tcp://b:1234"], "leave buildkit.address empty"),
    ("existing builder without certificate", ["buildkit.address=tcp://b:1234"], "needs buildkit.clientSecret"),
    ("half the builder's certificates", ["buildkit.deploy=true", "buildkit.serverSecret=bk-tls"], "go together"),
    ("unknown builder mode", ["buildkit.mode=userns"], "/buildkit/mode"),
    ("builder address without scheme", ["buildkit.address=b:1234", "buildkit.clientSecret=c"], "/buildkit/address"),
    ("cert-manager without its CRDs", ["webhook.certificate.source=cert-manager"], "needs cert-manager's CRDs"),
    ("docker mirror with a scheme", ["docker.mirror=https://m.example"], "/docker/mirror"),
    ("unknown failure policy", ["webhook.failurePolicy=Sometimes"], "/webhook/failurePolicy"),
    ("webhook timeout over the API server's 30 s", ["webhook.timeoutSeconds=31"], "/webhook/timeoutSeconds"),
    ("ServiceMonitor without metrics", ["metrics.enabled=false", "metrics.serviceMonitor.enabled=true", f"--api-versions={MONITORING}"], "needs metrics.enabled=true"),
]  # fmt: skip


#: What the builder cases must render: (buildkitd's securityContext keys, its namespace, the
#: operator's SHIPWAY_BUILDKIT_ADDR, the client Secret made by the chart or None).
BUILDER: dict[str, tuple[set[str] | None, str | None, str | None, str | None]] = {
    "defaults": (None, None, None, None),
    "builder deployed": (
        {"runAsUser", "runAsGroup", "seccompProfile", "appArmorProfile"}, "shipway",
        "tcp://shipway-buildkitd.shipway.svc:1234", "shipway-buildkit-client",
    ),
    "rootless builder in its own namespace": (
        {"runAsUser", "runAsGroup", "seccompProfile", "appArmorProfile"}, "shipway-buildkit",
        "tcp://shipway-buildkitd.shipway-buildkit.svc:1234", "shipway-buildkit-client",
    ),
    "privileged builder with given certificates and a mirror": (
        {"privileged"}, "shipway", "tcp://shipway-buildkitd.shipway.svc:1234", None,
    ),
    "existing builder": (None, None, "tcp://buildkitd.ci:1234", None),
}  # fmt: skip


def builder_facts(
    docs: list[dict[str, Any]],
) -> tuple[set[str] | None, str | None, str | None, str | None]:
    """buildkitd's securityContext keys and namespace, the operator's address, the client Secret."""
    context: set[str] | None = None
    namespace = address = client = None
    for doc in docs:
        kind, meta = doc.get("kind"), doc.get("metadata", {})
        if kind == "StatefulSet":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            context, namespace = set(container["securityContext"]), meta.get("namespace")
        elif kind == "Deployment":
            env = doc["spec"]["template"]["spec"]["containers"][0].get("env", [])
            address = next((e["value"] for e in env if e["name"] == "SHIPWAY_BUILDKIT_ADDR"), None)
        elif kind == "Secret" and meta.get("labels", {}).get("app.kubernetes.io/component") == (
            "buildkit-client"
        ):
            client = meta["name"]
    return context, namespace, address, client


@dataclass(frozen=True)
class Row:
    key: str
    default: Any
    description: str


def parse_values(text: str) -> tuple[list[Row], list[str]]:
    """The documented rows, and the keys that have no comment at all."""
    data = yaml.safe_load(text) or {}
    rows: list[Row] = []
    bare: list[str] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        match = KEY.match(line)
        if match is None:  # a list item or a continuation: not a key
            comment = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        path = ".".join(k for _, k in stack)
        if not comment:
            bare.append(path)
        elif comment[0].startswith("--"):
            text_ = " ".join([comment[0][2:].strip(), *comment[1:]]).strip()
            rows.append(Row(path, _lookup(data, path), text_))
        comment = []
    return rows, bare


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


def _cell(value: Any) -> str:
    return "`" + json.dumps(value, separators=(",", ":")).replace("|", "\\|") + "`"


def table(rows: list[Row]) -> str:
    lines = ["| Key | Default | Description |", "|---|---|---|"]
    for row in rows:
        description = row.description.replace("|", "\\|")
        lines.append(f"| `{row.key}` | {_cell(row.default)} | {description} |")
    return "\n".join(lines)


def doc_with_table(doc: str, generated: str) -> str:
    if START not in doc or END not in doc:
        raise SystemExit(f"docs/helm.md lacks the {START} ... {END} markers")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{generated}\n{END}{tail}"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chart_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--helm", help="helm binary (default: skip the helm checks)")
    parser.add_argument("--write", action="store_true", help="rewrite docs/helm.md's values table")
    args = parser.parse_args(argv)
    rows, bare = parse_values(VALUES.read_text())
    problems = [f"values.yaml: key {key} has no comment" for key in bare]
    doc = HELM_DOC.read_text()
    wanted = doc_with_table(doc, table(rows))
    if args.write:
        HELM_DOC.write_text(wanted)
    elif wanted != doc:
        problems.append(
            "docs/helm.md's values table is out of date with charts/shipway/values.yaml;"
            " run `make chart-readme`"
        )
    if args.helm:
        problems.extend(check_helm(args.helm))
        problems.extend(check_webhook(args.helm))
        problems.extend(check_history_api(args.helm))
    for problem in problems:
        print(f"chart-check: {problem}", file=sys.stderr)
    if not problems:
        print(f"chart-check: ok ({len(rows)} documented values"
              + (f", {len(GOOD)} good and {len(BAD)} refused value sets" if args.helm else "") + ")")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
