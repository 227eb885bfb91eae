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
{{- $name := include "eafix-service.name" . -}}
{{- if .Values.global.prefixNames -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: name + instance only; they never change across versions. */}}
{{- define "eafix-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eafix-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object: recommended labels, then global and local commonLabels. */}}
{{- define "eafix-service.labels" -}}
{{- $labels := dict
  "app.kubernetes.io/name" (include "eafix-service.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" (.Chart.AppVersion | toString)
  "app.kubernetes.io/component" (include "eafix-service.name" .)
  "app.kubernetes.io/part-of" "eafix"
  "app.kubernetes.io/managed-by" .Release.Service
  "helm.sh/chart" (printf "%s-%s" "eafix-service" .Chart.Version)
-}}
{{- $common := mergeOverwrite (deepCopy (.Values.global.commonLabels | default dict)) (.Values.commonLabels | default dict) -}}
{{- toYaml (mergeOverwrite $common $labels) -}}
{{- end -}}

{{/* Annotations on every object: global then local commonAnnotations (may be empty). */}}
{{- define "eafix-service.annotations" -}}
{{- $a := mergeOverwrite (deepCopy (.Values.global.commonAnnotations | default dict)) (.Values.commonAnnotations | default dict) -}}
{{- if $a }}{{ toYaml $a }}{{ end -}}
{{- end -}}

{{/*
Metadata block shared by every object. Usage:
  include "eafix-service.metadata" (dict "ctx" . "name" "x" "annotations" (dict ...))
*/}}
{{- define "eafix-service.metadata" -}}
{{- $ctx := .ctx -}}
name: {{ .name | default (include "eafix-service.fullname" $ctx) }}
namespace: {{ $ctx.Release.Namespace }}
labels:
  {{- include "eafix-service.labels" $ctx | nindent 2 }}
{{- $ann := mergeOverwrite (deepCopy (.annotations | default dict)) (fromYaml (include "eafix-service.annotations" $ctx) | default dict) }}
{{- if $ann }}
annotations:
  {{- toYaml $ann | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Image reference, local > global > default; the tag defaults to appVersion and a digest pins it.
Usage: include "eafix-service.image" (dict "image" .Values.image "global" .Values.global "name" "data-ingestor" "appVersion" .Chart.AppVersion)
*/}}
{{- define "eafix-service.image" -}}
{{- $g := .global.image | default dict -}}
{{- $l := .image | default dict -}}
{{- $registry := $l.registry | default $g.registry -}}
{{- $repository := $l.repository | default (printf "%s/%s" ($g.repository | default "eafix") .name) -}}
{{- $tag := $l.tag | default $g.tag | default .appVersion | toString -}}
{{- $digest := $l.digest | default $g.digest -}}
{{- $ref := $repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry $repository }}{{ end -}}
{{- if $tag }}{{ $ref = printf "%s:%s" $ref $tag }}{{ end -}}
{{- if $digest }}{{ $ref = printf "%s@%s" $ref $digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{/* Pull policy, local > global > IfNotPresent. */}}
{{- define "eafix-service.pullPolicy" -}}
{{- .Values.image.pullPolicy | default .Values.global.image.pullPolicy | default "IfNotPresent" -}}
{{- end -}}

{{/*
Pull secrets: global then local, names or {name: ...}, de-duplicated.
Usage: include "eafix-service.pullSecrets" (list .Values.global.imagePullSecrets .Values.imagePullSecrets)
*/}}
{{- define "eafix-service.pullSecrets" -}}
{{- $names := list -}}
{{- range $group := . -}}
{{- range $s := ($group | default list) -}}
{{- $n := $s -}}
{{- if kindIs "map" $s }}{{ $n = $s.name }}{{ end -}}
{{- if and $n (not (has $n $names)) }}{{ $names = append $names $n }}{{ end -}}
{{- end -}}
{{- end -}}
{{- range $names }}
- name: {{ . }}
{{- end -}}
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
