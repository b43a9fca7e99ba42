{{- define "k8stars.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "k8stars.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: k8stars
{{- end -}}

{{- define "k8stars.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "k8stars.webhookService" -}}
{{ include "k8stars.fullname" . }}-webhook
{{- end -}}

{{/*
The webhook's CA and serving certificate (base64), made once per render and kept in .Values, which every template
of the chart shares: the Secret, the webhook configurations' and the CRDs' caBundle all get the same ones. An upgrade
keeps those of the release's Secret (unless webhook.renewCerts), so that the operator pods still serving the old
certificate during a rollout stay trusted by the apiserver.
*/}}
{{- define "k8stars.webhookCerts" -}}
{{- if not (hasKey .Values "_k8starsWebhookCerts") -}}
{{- $service := include "k8stars.webhookService" . -}}
{{- $existing := (lookup "v1" "Secret" .Release.Namespace (printf "%s-tls" $service)).data | default dict -}}
{{- if and (not .Values.webhook.renewCerts) (index $existing "ca.crt") (index $existing "tls.crt") (index $existing "tls.key") -}}
{{- $_ := set .Values "_k8starsWebhookCerts" (dict "ca" (index $existing "ca.crt") "cert" (index $existing "tls.crt") "key" (index $existing "tls.key")) -}}
{{- else -}}
{{- $host := printf "%s.%s.svc" $service .Release.Namespace -}}
{{- $days := int .Values.webhook.certDays -}}
{{- $ca := genCA "k8stars-webhook-ca" $days -}}
{{- $cert := genSignedCert $host nil (list $host (printf "%s.cluster.local" $host)) $days $ca -}}
{{- $_ := set .Values "_k8starsWebhookCerts" (dict "ca" ($ca.Cert | b64enc) "cert" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The webhooks' namespaceSelector: webhook.namespaceSelector, else (a one-namespace operator) that namespace only: its
webhooks must not judge objects of namespaces it may not read.
*/}}
{{- define "k8stars.webhookNamespaces" -}}
{{- $selector := .Values.webhook.namespaceSelector -}}
{{- if and (not $selector) .Values.operator.namespace -}}
{{- $selector = dict "matchLabels" (dict "kubernetes.io/metadata.name" .Values.operator.namespace) -}}
{{- end -}}
{{- with $selector }}
namespaceSelector:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}
