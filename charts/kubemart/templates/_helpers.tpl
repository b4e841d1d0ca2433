{{- define "kubemart.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubemart.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "kubemart.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kubemart.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kubemart.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubemart.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kubemart.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kubemart.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubemart
{{- end }}

{{- define "kubemart.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubemart.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubemart.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "kubemart.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "kubemart.leaseName" -}}
{{- default (include "kubemart.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The namespaces the operator gets Roles in, in namespaced mode: the watched ones and its own. */}}
{{- define "kubemart.roleNamespaces" -}}
{{- $all := append (.Values.watchNamespaces | default list) .Release.Namespace }}
{{- toJson (uniq $all) }}
{{- end }}

{{- define "kubemart.chartContents" -}}
{{- $c := .Values.rbac.chartContents }}
{{- if not (has $c (list "all" "none")) }}
{{- fail (printf "rbac.chartContents must be \"all\" or \"none\", not %q" $c) }}
{{- end }}
{{- $c }}
{{- end }}

{{/*
The operator's own rules on namespaced kinds: the same in a ClusterRole (cluster-wide mode) and in each
watched namespace's Role (namespaced mode). docs/security.md#rbac explains each.
*/}}
{{- define "kubemart.namespacedRules" -}}
- apiGroups: [kubemart.io]
  resources: [appinstalls, payments, notificationsinks]
  verbs: [get, list, watch, patch, update]
- apiGroups: [kubemart.io]
  resources: [appinstalls/status, payments/status, notificationsinks/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, watch, patch]
- apiGroups: [apps]
  resources: [deployments/scale, statefulsets/scale]
  verbs: [patch, update]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, patch]
- apiGroups: [""]
  resources: [services, serviceaccounts, persistentvolumeclaims]
  verbs: [get, list, watch, patch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, patch]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [impersonate]
{{- end }}

{{/* Rules on cluster-scoped things, needed in both modes. */}}
{{- define "kubemart.clusterRules" -}}
- apiGroups: [kubemart.io]
  resources: [marketsources]
  verbs: [get, list, watch]
- apiGroups: [kubemart.io]
  resources: [marketsources/status]
  verbs: [get, patch, update]
- apiGroups: [kubemart.io]
  resources: [marketapps]
  verbs: [get, list, watch, create, update, patch, delete]
# Install counts (status.installs): docs/install-counts.md.
- apiGroups: [kubemart.io]
  resources: [marketapps/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.settings.checkRequirements }}
# The requirements check (docs/requirements.md): free capacity from the nodes and the pods bound to them.
- apiGroups: [""]
  resources: [nodes, pods]
  verbs: [list, watch]
{{- end }}
{{- end }}
