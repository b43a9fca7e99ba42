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
The webhook's CA and serving certificate (base64), generated once per render and kept in .Values, which every
template of the chart shares: the Secret, the webhook configurations' and the CRDs' caBundle all get the same ones.
*/}}
{{- define "k8stars.webhookCerts" -}}
{{- if not (hasKey .Values "_k8starsWebhookCerts") -}}
{{- $host := printf "%s.%s.svc" (include "k8stars.webhookService" .) .Release.Namespace -}}
{{- $days := int .Values.webhook.certDays -}}
{{- $ca := genCA "k8stars-webhook-ca" $days -}}
{{- $cert := genSignedCert $host nil (list $host (printf "%s.cluster.local" $host)) $days $ca -}}
{{- $_ := set .Values "_k8starsWebhookCerts" (dict "ca" ($ca.Cert | b64enc) "cert" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc)) -}}
{{- end -}}
{{- end -}}
