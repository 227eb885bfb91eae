{{/* Helpers of the eafix-infra chart's own templates (the subcharts have theirs). */}}

{{/*
Labels (eafix-common.labels) of a component: app.kubernetes.io/name is `eafix-<component>`.
Usage: include "eafix-infra.labels" (dict "ctx" $ "component" "backup")
*/}}
{{- define "eafix-infra.labels" -}}
{{- include "eafix-common.labels" (dict "ctx" .ctx "app" (printf "eafix-%s" .component) "component" .component) -}}
{{- end -}}

{{/* Selector labels of a component's pods. */}}
{{- define "eafix-infra.selectorLabels" -}}
{{- include "eafix-common.selectorLabels" (dict "ctx" .ctx "app" (printf "eafix-%s" .component)) -}}
{{- end -}}

{{/*
Metadata (eafix-common.metadata). Usage: include "eafix-infra.metadata" (dict "ctx" $ "name" "x" "component" "x"
  "annotations" (dict) "labels" (dict) "namespace" "" "clusterScoped" false)
*/}}
{{- define "eafix-infra.metadata" -}}
{{- include "eafix-common.metadata" (dict "ctx" .ctx "name" .name "app" (printf "eafix-%s" .component) "component" .component
  "labels" .labels "annotations" .annotations "namespace" .namespace "clusterScoped" .clusterScoped) -}}
{{- end -}}

{{/*
A backup image (eafix-common.image, JSON): the image's own registry, else `global.imageRegistry`,
else docker.io. Usage: include "eafix-infra.image" (dict "image" .Values.backup.images.postgres "global" .Values.global) | fromJson
*/}}
{{- define "eafix-infra.image" -}}
{{- include "eafix-common.image" (dict "local" .image "global" (dict "registry" .global.imageRegistry) "default" (dict "registry" "docker.io")) -}}
{{- end -}}

{{/* Enabled Secret definitions of the contract, as a map name -> definition (JSON). */}}
{{- define "eafix-infra.secretDefinitions" -}}
{{- $out := dict -}}
{{- range $name, $def := .Values.secrets.definitions -}}
{{- if and $def $def.enabled -}}
{{- $_ := set $out $name $def -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
