{{/* Name of every object of the release: the release name (cluster-scoped objects too,
     so two releases of one name in different namespaces would collide). */}}
{{- define "kongress.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kongress.labels" -}}
app.kubernetes.io/name: kongress
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels of the operator pods; the Deployment, PDB, Service and anti-affinity select on them. */}}
{{- define "kongress.selector" -}}
app.kubernetes.io/name: kongress
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "kongress.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* host:port for KONGRESS_METRICS_ADDRESS; an IPv6 address gets its brackets. */}}
{{- define "kongress.metricsAddress" -}}
{{- $host := .Values.metrics.bindAddress -}}
{{- if and (contains ":" $host) (not (hasPrefix "[" $host)) -}}
{{- $host = printf "[%s]" $host -}}
{{- end -}}
{{ $host }}:{{ .Values.metrics.port }}
{{- end -}}

{{/* OTEL_RESOURCE_ATTRIBUTES: the pod's identity (expanded by the kubelet from the env
     variables defined before it) plus the user's attributes, sorted by key. */}}
{{- define "kongress.otelResourceAttributes" -}}
{{- $pairs := list "k8s.namespace.name=$(KONGRESS_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" -}}
{{- range $key, $value := .Values.otel.resourceAttributes -}}
{{- $pairs = append $pairs (printf "%s=%v" $key $value) -}}
{{- end -}}
{{ join "," $pairs }}
{{- end -}}
