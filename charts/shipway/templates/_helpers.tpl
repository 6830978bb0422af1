{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "shipway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object the chart creates. */}}
{{- define "shipway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "shipway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "shipway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shipway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "shipway.labels" -}}
helm.sh/chart: {{ include "shipway.chart" . }}
{{ include "shipway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shipway
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "shipway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shipway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "shipway.peeringName" -}}
{{- default (include "shipway.fullname" .) .Values.peering.name }}
{{- end }}

{{- define "shipway.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Modes and namespaces ------------------------------------------------------------------ */}}

{{/* Refuse combinations that cannot work, with a message saying what to change. */}}
{{- define "shipway.validate" -}}
{{- if and .Values.allNamespaces .Values.watchNamespaces }}
{{- fail "allNamespaces=true watches every namespace: leave watchNamespaces empty, or set allNamespaces=false to watch only the listed namespaces" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not (and .Values.metrics.enabled .Values.metrics.service.enabled)) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true and metrics.service.enabled=true: the ServiceMonitor scrapes the metrics Service" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) }}
{{- fail "metrics.serviceMonitor.enabled needs the prometheus-operator CRDs (monitoring.coreos.com/v1 ServiceMonitor) in the cluster" }}
{{- end }}
{{- if and .Values.buildkit.deploy .Values.buildkit.address }}
{{- fail "buildkit.deploy=true runs the chart's own builder: leave buildkit.address empty, or set buildkit.deploy=false to use the builder at buildkit.address" }}
{{- end }}
{{- if and .Values.buildkit.deploy (ne (empty .Values.buildkit.serverSecret) (empty .Values.buildkit.clientSecret)) }}
{{- fail "buildkit.serverSecret and buildkit.clientSecret go together (certificates from one CA); leave both empty and the chart makes them" }}
{{- end }}
{{- if and .Values.buildkit.address (not .Values.buildkit.clientSecret) }}
{{- fail "buildkit.address needs buildkit.clientSecret: the name of a Secret in the release namespace with ca.crt, tls.crt and tls.key (the builder requires client certificates)" }}
{{- end }}
{{- with .Values.registry }}
{{- if and (not .url) (or .ca .caConfigMap .insecure .pushSecret) }}
{{- fail "registry.ca, registry.caConfigMap, registry.insecure and registry.pushSecret describe a registry: set registry.url too" }}
{{- end }}
{{- if and .ca .caConfigMap }}
{{- fail "registry.ca and registry.caConfigMap both give the registry's CA: set only one" }}
{{- end }}
{{- if and (not .url) .credentialSecret }}
{{- fail "registry.credentialSecret mints credentials for a registry: set registry.url too" }}
{{- end }}
{{- if and .tokenService.deploy (not (and .url .credentialSecret .tokenService.signingKeySecret)) }}
{{- fail "registry.tokenService.deploy needs registry.url, registry.credentialSecret (the key namespaces' credentials derive from) and registry.tokenService.signingKeySecret (signing.pem)" }}
{{- end }}
{{- if and .insecure (or .ca .caConfigMap) }}
{{- fail "registry.insecure skips TLS verification: drop registry.ca/caConfigMap, or set insecure=false to verify with them" }}
{{- end }}
{{- end }}
{{- if and .Values.webhook.enabled (eq .Values.webhook.certificate.source "cert-manager") (not (.Capabilities.APIVersions.Has "cert-manager.io/v1/Certificate")) }}
{{- fail "webhook.certificate.source=cert-manager needs cert-manager's CRDs (cert-manager.io/v1 Certificate) in the cluster; or use source=helm" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.enabled) }}
{{- fail (printf "replicaCount=%d needs peering.enabled=true: without kopf peering every replica would run the same Pipelines at once" (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.history.enabled (not .Values.history.postgres.urlSecret) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount=%d with history on SQLite (the chart's claim, one writer): set history.postgres.urlSecret to a PostgreSQL database's Secret, or history.enabled=false" (int .Values.replicaCount)) }}
{{- end }}
{{- end }}

{{/* The namespaces the operator watches, as a JSON list (empty with allNamespaces). */}}
{{- define "shipway.watchNamespaces" -}}
{{- if .Values.allNamespaces }}
{{- list | toJson }}
{{- else if .Values.watchNamespaces }}
{{- .Values.watchNamespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/* The namespaces that get the step pods' default ServiceAccount, as a JSON list. */}}
{{- define "shipway.stepNamespaces" -}}
{{- $namespaces := include "shipway.watchNamespaces" . | fromJsonArray }}
{{- if .Values.allNamespaces }}
{{- $namespaces = list .Release.Namespace }}
{{- end }}
{{- concat $namespaces .Values.stepServiceAccount.namespaces | uniq | toJson }}
{{- end }}

{{/* RBAC rules ------------------------------------------------------------------------------ */}}

{{/* What Shipway itself does with the API (see operator/shipway/controller/kube/ and controller/handlers.py). */}}
{{- define "shipway.operatorRules" -}}
# Pipelines: listed and watched (kopf), their status written (the operator's only write to them).
- apiGroups: ["shipway.dev"]
  resources: ["pipelines"]
  verbs: ["list", "watch"]
- apiGroups: ["shipway.dev"]
  resources: ["pipelines/status"]
  verbs: ["patch"]
# Step pods: watched (kopf), created, read back, stopped (a patch of activeDeadlineSeconds) and
# deleted (retries).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "get", "create", "patch", "delete"]
# The workspace claim of each Pipeline (deleted with it through its owner reference); claims
# are listed and watched so that one deleted while its pipeline runs fails it at once.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "create", "get"]
# One Event per step start, finish and failure, on the Pipeline.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if .Values.history.enabled }}
# The history: every finished pod's logs read once, to archive them.
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- if .Values.history.maskSecrets }}
# The values of the Secrets a Pipeline names, masked in its archived logs (read once per run).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{- if .Values.retention.enabled }}
# Retention: finished Pipelines beyond the limits are deleted (pods and claim follow through
# owner references), and a namespace's shipway-retention ConfigMap is read.
- apiGroups: ["shipway.dev"]
  resources: ["pipelines"]
  verbs: ["delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: ["shipway-retention"]
  verbs: ["get"]
{{- end }}
{{- end }}
{{- if include "shipway.buildkit.address" . }}
# Image builds: a copy of the builder's client certificate for each building Pipeline, made
# before its first build pod and deleted after its last (never read back).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "delete"]
{{- end }}
{{- end }}

{{/* BuildKit ------------------------------------------------------------------------------- */}}

{{- define "shipway.buildkit.name" -}}
{{- printf "%s-buildkitd" (include "shipway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "shipway.buildkit.namespace" -}}
{{- default .Release.Namespace .Values.buildkit.namespace }}
{{- end }}

{{/* Where build pods reach buildkitd: the deployed Service, or the configured address. */}}
{{- define "shipway.buildkit.address" -}}
{{- if .Values.buildkit.deploy }}
{{- printf "tcp://%s.%s.svc:1234" (include "shipway.buildkit.name" .) (include "shipway.buildkit.namespace" .) }}
{{- else }}
{{- .Values.buildkit.address }}
{{- end }}
{{- end }}

{{- define "shipway.buildkit.serverSecret" -}}
{{- default (printf "%s-tls" (include "shipway.buildkit.name" .)) .Values.buildkit.serverSecret }}
{{- end }}

{{- define "shipway.buildkit.clientSecret" -}}
{{- default (printf "%s-buildkit-client" (include "shipway.fullname" .)) .Values.buildkit.clientSecret }}
{{- end }}

{{- define "shipway.buildkit.image" -}}
{{- if .Values.buildkit.image }}
{{- .Values.buildkit.image }}
{{- else if eq .Values.buildkit.mode "rootless" }}
{{- "moby/buildkit:v0.34.2-rootless" }}
{{- else }}
{{- "moby/buildkit:v0.34.2" }}
{{- end }}
{{- end }}

{{- define "shipway.buildkit.selectorLabels" -}}
{{ include "shipway.selectorLabels" . }}
app.kubernetes.io/component: buildkitd
{{- end }}

{{/* buildkitd.toml: TLS on the TCP listener (client certificates required), a local socket for
the probes, the OCI worker with its cache limits and parallelism, the registries. */}}
{{- define "shipway.buildkit.config" -}}
{{- $b := .Values.buildkit -}}
{{- $rootless := eq $b.mode "rootless" -}}
root = "/var/lib/buildkit"

[log]
  format = "text"

[grpc]
  address = ["tcp://0.0.0.0:1234", "unix:///run/buildkit/buildkitd.sock"]
  [grpc.tls]
    cert = "/etc/buildkit/tls/tls.crt"
    key = "/etc/buildkit/tls/tls.key"
    ca = "/etc/buildkit/tls/ca.crt"

[history]
  maxAge = 86400
  maxEntries = 50

[worker.oci]
  enabled = true
  rootless = {{ $rootless }}
  noProcessSandbox = {{ $rootless }}
  gc = true
  maxUsedSpace = {{ $b.cache.maxUsedSpace | toString | quote }}
  reservedSpace = {{ $b.cache.reservedSpace | toString | quote }}
  minFreeSpace = {{ $b.cache.minFreeSpace | toString | quote }}
  max-parallelism = {{ int $b.maxParallelism }}

[worker.containerd]
  enabled = false
{{- range $host, $r := $b.registries }}

[registry.{{ $host | quote }}]
  {{- with $r.mirrors }}
  mirrors = {{ toJson . }}
  {{- end }}
  {{- if $r.http }}
  http = true
  {{- end }}
  {{- if $r.insecure }}
  insecure = true
  {{- end }}
  {{- if $r.ca }}
  ca = [{{ printf "/etc/buildkit/config/ca-%s.crt" ($host | replace ":" "_") | quote }}]
  {{- end }}
{{- end }}
{{- end }}

{{/* The ConfigMap holding registry.ca (when given inline). */}}
{{- define "shipway.registryCaConfigMap" -}}
{{- if .Values.registry.caConfigMap }}{{ .Values.registry.caConfigMap }}{{ else }}{{ include "shipway.fullname" . }}-registry-ca{{ end }}
{{- end }}

{{/* The history ----------------------------------------------------------------------------- */}}

{{/* SQLite on the chart's claim (not PostgreSQL). */}}
{{- define "shipway.history.sqlite" -}}
{{- if and .Values.history.enabled (not .Values.history.postgres.urlSecret) }}true{{ end }}
{{- end }}
