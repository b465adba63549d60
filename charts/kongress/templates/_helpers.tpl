{{- define "kongress.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kongress.labels" -}}
app.kubernetes.io/name: kongress
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kongress.selector" -}}
app.kubernetes.io/name: kongress
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
