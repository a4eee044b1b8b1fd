{{- define "kotel-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kotel-operator.labels" -}}
app.kubernetes.io/name: {{ include "kotel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kotel
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kotel-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kotel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
