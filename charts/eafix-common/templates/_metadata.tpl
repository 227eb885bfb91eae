{{/*
Object metadata: name, namespace (left out for cluster-scoped kinds), labels (eafix-common.labels)
and annotations: global.commonAnnotations, then the chart's own commonAnnotations, then the
object's own (hook and policy annotations win).
Usage: include "eafix-common.metadata" (dict "ctx" $ "name" "x" "app" "x" "component" "x"
  "labels" (dict) "annotations" (dict) "namespace" "" "clusterScoped" false "chart" "")
*/}}
{{- define "eafix-common.metadata" -}}
{{- $v := .ctx.Values -}}
name: {{ .name }}
{{- if not .clusterScoped }}
namespace: {{ .namespace | default .ctx.Release.Namespace }}
{{- end }}
labels:
  {{- include "eafix-common.labels" . | nindent 2 }}
{{- $ann := mergeOverwrite (deepCopy (($v.global | default dict).commonAnnotations | default dict)) ($v.commonAnnotations | default dict) (.annotations | default dict) }}
{{- if $ann }}
annotations:
  {{- toYaml $ann | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Object name: `name`, or `<release>-<name>` when `prefix` is true (two releases in one namespace);
at most 63 characters. Usage: include "eafix-common.fullname" (dict "ctx" $ "name" "risk-manager" "prefix" true)
*/}}
{{- define "eafix-common.fullname" -}}
{{- $name := .name -}}
{{- if .prefix }}{{ $name = printf "%s-%s" .ctx.Release.Name .name }}{{ end -}}
{{- $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
