{{- define "app.name" -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "app.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- /* Privileged and capabilities come from security.json, baked in at packaging: values cannot add them. */ -}}
{{- define "app.security" -}}
{{- $sec := .Files.Get "security.json" | fromJson -}}
{{- if or $sec.privileged $sec.capabilities }}
securityContext:
  {{- if $sec.privileged }}
  privileged: true
  {{- end }}
  {{- with $sec.capabilities }}
  capabilities:
    add: {{ toJson . }}
  {{- end }}
{{- else }}
securityContext:
  allowPrivilegeEscalation: false
{{- end }}
{{- end -}}
