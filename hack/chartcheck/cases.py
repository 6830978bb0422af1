"""The value sets the chart must render (and what each must render), and those it must refuse."""

from __future__ import annotations

from typing import Any

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
