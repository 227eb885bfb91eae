{{/*
Metadata of every object of the app-of-apps (eafix-common.metadata): in the Argo CD namespace,
labelled with the environment. Usage: include "eafix-apps.metadata" (dict "ctx" $ "name" "x" "component" "" "annotations" (dict))
*/}}
{{- define "eafix-apps.metadata" -}}
{{- include "eafix-common.metadata" (dict "ctx" .ctx "name" .name "namespace" .ctx.Values.argocdNamespace "app" "eafix-apps"
  "component" .component "labels" (dict "eafix.io/environment" .ctx.Values.environment) "annotations" .annotations) -}}
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
