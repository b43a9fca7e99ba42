{{- define "framework.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: k8stars
{{- end -}}


{{/*
Hardening of a framework pod (issue 16): a non-root user (the image has no user of its own), no privilege
escalation, no capability, a read-only root file system (a /tmp emptyDir for what needs one), RuntimeDefault seccomp.
"framework.podSecurity" takes (dict "root" $ "fsGroup" <a claim's group, or "">): volumes are made writable by
fsGroup, the user's group unless the chart's values name another.
*/}}
{{- define "framework.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .root.Values.security.runAsUser }}
  runAsGroup: {{ .root.Values.security.runAsUser }}
  fsGroup: {{ .fsGroup | default .root.Values.security.runAsUser }}
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "framework.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}

{{/* AdminObj (shutdown, tars.* commands) on the pod's loopback only: `kubectl exec deploy/<name> -- k8stars call
'AdminObj@tcp -h 127.0.0.1 -p <adminPort>' notify '{"command": "tars.viewstatus"}'`. */}}
{{- define "framework.adminEndpoint" -}}
- --admin-endpoint=tcp -h 127.0.0.1 -p {{ .Values.adminPort }}
{{- end -}}
