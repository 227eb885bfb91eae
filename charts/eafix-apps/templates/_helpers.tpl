{{/* Labels of every object of the app-of-apps. */}}
{{- define "eafix-apps.labels" -}}
{{- $labels := dict
  "app.kubernetes.io/name" "eafix-apps"
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" (.Chart.AppVersion | toString)
  "app.kubernetes.io/part-of" "eafix"
  "app.kubernetes.io/managed-by" .Release.Service
  "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version)
  "eafix.io/environment" .Values.environment
-}}
{{- toYaml (mergeOverwrite (deepCopy (.Values.commonLabels | default dict)) $labels) -}}
{{- end -}}

{{/* Enabled applications as a JSON map name -> spec. */}}
{{- define "eafix-apps.applications" -}}
{{- $out := dict -}}
{{- range $name, $app := .Values.applications -}}
{{- if and $app $app.enabled -}}
{{- $_ := set $out $name $app -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
