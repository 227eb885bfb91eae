{{/* Helpers of the umbrella: the service list and cross-service names. */}}

{{/* The ten services, in pipeline order (JSON list). */}}
{{- define "eafix.services" -}}
["gui-gateway","data-ingestor","indicator-engine","signal-generator","risk-manager","execution-engine","calendar-ingestor","reentry-matrix-svc","reporter","compliance-monitor"]
{{- end -}}

{{/* Names of the enabled services (JSON list). */}}
{{- define "eafix.enabledServices" -}}
{{- $on := list -}}
{{- range $s := include "eafix.services" . | fromJsonArray -}}
{{- if (index $.Values $s).enabled }}{{ $on = append $on $s }}{{ end -}}
{{- end -}}
{{- toJson $on -}}
{{- end -}}

{{/* Object name of a service, as the service chart names it. Usage: include "eafix.serviceName" (dict "ctx" $ "name" "risk-manager") */}}
{{- define "eafix.serviceName" -}}
{{- $v := index .ctx.Values .name -}}
{{- $n := $v.nameOverride | default .name -}}
{{- if .ctx.Values.global.prefixNames -}}
{{- printf "%s-%s" .ctx.Release.Name $n | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $n | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* In-cluster URL of a service. */}}
{{- define "eafix.serviceUrl" -}}
{{- printf "http://%s:%v" (include "eafix.serviceName" .) (index .ctx.Values .name).port -}}
{{- end -}}

{{/* Labels of the umbrella's own objects. Usage: include "eafix.labels" (dict "ctx" $ "component" "x") */}}
{{- define "eafix.labels" -}}
{{- $labels := dict
  "app.kubernetes.io/name" .component
  "app.kubernetes.io/instance" .ctx.Release.Name
  "app.kubernetes.io/version" (.ctx.Chart.AppVersion | toString)
  "app.kubernetes.io/component" .component
  "app.kubernetes.io/part-of" "eafix"
  "app.kubernetes.io/managed-by" .ctx.Release.Service
  "helm.sh/chart" (printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version)
-}}
{{- toYaml (mergeOverwrite (deepCopy (.ctx.Values.global.commonLabels | default dict)) $labels) -}}
{{- end -}}

{{/* Metadata of the umbrella's own objects. Usage: include "eafix.metadata" (dict "ctx" $ "name" "x" "component" "x" "annotations" (dict)) */}}
{{- define "eafix.metadata" -}}
name: {{ .name }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "eafix.labels" (dict "ctx" .ctx "component" (.component | default .name)) | nindent 2 }}
{{- $ann := mergeOverwrite (deepCopy (.ctx.Values.global.commonAnnotations | default dict)) (.annotations | default dict) }}
{{- if $ann }}
annotations:
  {{- toYaml $ann | nindent 2 }}
{{- end }}
{{- end -}}
