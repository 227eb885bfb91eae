{{/*
Helpers of the generic service chart. `.Chart.Name` is the alias the umbrella gives this chart,
i.e. the service name (data-ingestor, risk-manager, ...).
*/}}

{{/* Service name. Usage: include "eafix-service.name" . */}}
{{- define "eafix-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Object name: the plain service name, so documented commands (`kubectl rollout status
deployment/data-ingestor`) work; `global.prefixNames` prepends the release name so two releases
can share a namespace.
*/}}
{{- define "eafix-service.fullname" -}}
{{- include "eafix-common.fullname" (dict "ctx" . "name" (include "eafix-service.name" .) "prefix" .Values.global.prefixNames) -}}
{{- end -}}

{{/* Selector labels: name + instance only; they never change across versions. */}}
{{- define "eafix-service.selectorLabels" -}}
{{- include "eafix-common.selectorLabels" (dict "ctx" . "app" (include "eafix-service.name" .)) -}}
{{- end -}}

{{/* Labels on every object (eafix-common.labels); helm.sh/chart names this chart, not the alias. */}}
{{- define "eafix-service.labels" -}}
{{- $name := include "eafix-service.name" . -}}
{{- include "eafix-common.labels" (dict "ctx" . "app" $name "component" $name "chart" (printf "eafix-service-%s" .Chart.Version)) -}}
{{- end -}}

{{/*
Metadata block shared by every object (eafix-common.metadata). Usage:
  include "eafix-service.metadata" (dict "ctx" . "name" "x" "annotations" (dict ...))
*/}}
{{- define "eafix-service.metadata" -}}
{{- $ctx := .ctx -}}
{{- $name := include "eafix-service.name" $ctx -}}
{{- include "eafix-common.metadata" (dict "ctx" $ctx "name" (.name | default (include "eafix-service.fullname" $ctx))
  "app" $name "component" $name "chart" (printf "eafix-service-%s" $ctx.Chart.Version) "annotations" .annotations) -}}
{{- end -}}

{{/*
The service's image (eafix-common.image, JSON): local `image.*` > `global.image.*` > the default
`<global.image.repository>/<service>` at the chart's appVersion, IfNotPresent.
*/}}
{{- define "eafix-service.image" -}}
{{- $g := .Values.global.image | default dict -}}
{{- $name := include "eafix-service.name" . -}}
{{- $global := pick $g "registry" "tag" "digest" "pullPolicy" -}}
{{- with $g.repository }}{{ $_ := set $global "repository" (printf "%s/%s" . $name) }}{{ end -}}
{{- include "eafix-common.image" (dict "local" .Values.image "global" $global
  "default" (dict "repository" (printf "eafix/%s" $name) "tag" .Chart.AppVersion "pullPolicy" "IfNotPresent")) -}}
{{- end -}}

{{/* The service's effective autoscaling switch. */}}
{{- define "eafix-service.hpaEnabled" -}}
{{- if .Values.autoscaling.enabled }}true{{ end -}}
{{- end -}}

{{/* Service account name. */}}
{{- define "eafix-service.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "eafix-service.fullname" .) -}}
{{- end -}}

{{/* Environment variable name of a setting: SERVICE_<UPPER_SNAKE>. */}}
{{- define "eafix-service.envName" -}}
{{- printf "SERVICE_%s" (. | snakecase | upper | replace "-" "_") -}}
{{- end -}}
