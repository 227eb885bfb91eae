{{/*
Labels and selectors. Every helper takes a dict:
  ctx        the caller's root context ($)
  app        app.kubernetes.io/name (the selector's name)
  component  app.kubernetes.io/component (optional)
  chart      helm.sh/chart (optional; default <Chart.Name>-<Chart.Version>)
  labels     labels of this object only (optional; they win over everything but the selector)
*/}}

{{/*
A valid label value from any value: characters outside [-_.A-Za-z0-9] become "_" (a SemVer
"+build" too), at most 63 characters, starting and ending with an alphanumeric.
Usage: include "eafix-common.labels.value" .Chart.AppVersion
*/}}
{{- define "eafix-common.labels.value" -}}
{{- $v := regexReplaceAll "[^-_.A-Za-z0-9]+" (toString .) "_" | trunc 63 -}}
{{- regexReplaceAll "^[^A-Za-z0-9]+|[^A-Za-z0-9]+$" $v "" -}}
{{- end -}}

{{/* Selector labels: name + instance only; they never change across versions. */}}
{{- define "eafix-common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eafix-common.labels.value" .app }}
app.kubernetes.io/instance: {{ include "eafix-common.labels.value" .ctx.Release.Name }}
{{- end -}}

{{/*
Every label of an object: global.commonLabels, then the chart's own commonLabels, then the
recommended labels, then the object's own; every value cleaned.
*/}}
{{- define "eafix-common.labels" -}}
{{- $v := .ctx.Values -}}
{{- $out := mergeOverwrite (deepCopy (($v.global | default dict).commonLabels | default dict)) ($v.commonLabels | default dict) -}}
{{- $_ := set $out "app.kubernetes.io/version" .ctx.Chart.AppVersion -}}
{{- $_ = set $out "app.kubernetes.io/part-of" "eafix" -}}
{{- $_ = set $out "app.kubernetes.io/managed-by" .ctx.Release.Service -}}
{{- $_ = set $out "helm.sh/chart" (.chart | default (printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version)) -}}
{{- with .component }}{{ $_ = set $out "app.kubernetes.io/component" . }}{{ end -}}
{{- $out = mergeOverwrite $out (.labels | default dict) (fromYaml (include "eafix-common.selectorLabels" .)) -}}
{{- range $k := keys $out | sortAlpha }}
{{ $k }}: {{ include "eafix-common.labels.value" (get $out $k) | quote }}
{{- end -}}
{{- end -}}
