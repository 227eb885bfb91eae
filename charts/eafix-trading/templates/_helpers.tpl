{{/* Helpers of the umbrella: the service list and cross-service names. */}}

{{/*
The enabled services, in Chart.yaml order (JSON list): the aliases of the eafix-service
dependency. Helm has already renamed each to its alias and dropped the disabled ones (their
`condition`), so a service is added by its Chart.yaml entry and its values block only.
*/}}
{{- define "eafix.enabledServices" -}}
{{- $on := list -}}
{{- range $d := .Chart.Dependencies -}}
{{- if and $d.Enabled (eq $d.Repository "file://charts/eafix-service") }}{{ $on = append $on $d.Name }}{{ end -}}
{{- end -}}
{{- toJson $on -}}
{{- end -}}

{{/* Object name of a service, as the service chart names it. Usage: include "eafix.serviceName" (dict "ctx" $ "name" "risk-manager") */}}
{{- define "eafix.serviceName" -}}
{{- $v := index .ctx.Values .name -}}
{{- include "eafix-common.fullname" (dict "ctx" .ctx "name" ($v.nameOverride | default .name) "prefix" .ctx.Values.global.prefixNames) -}}
{{- end -}}

{{/* In-cluster URL of a service. */}}
{{- define "eafix.serviceUrl" -}}
{{- printf "http://%s:%v" (include "eafix.serviceName" .) (index .ctx.Values .name).port -}}
{{- end -}}

{{/*
A list of service names with "*" expanded to every enabled service but `self` (JSON list).
Usage: include "eafix.expandServices" (dict "ctx" $ "names" $f.to "self" $f.from)
*/}}
{{- define "eafix.expandServices" -}}
{{- $out := list -}}
{{- range $n := .names | default list -}}
{{- if eq $n "*" -}}
{{- range $s := include "eafix.enabledServices" $.ctx | fromJsonArray }}{{ if ne $s $.self }}{{ $out = append $out $s }}{{ end }}{{ end -}}
{{- else -}}
{{- $out = append $out $n -}}
{{- end -}}
{{- end -}}
{{- toJson ($out | uniq) -}}
{{- end -}}

{{/* Labels of the umbrella's own objects. Usage: include "eafix.labels" (dict "ctx" $ "component" "x") */}}
{{- define "eafix.labels" -}}
{{- include "eafix-common.labels" (dict "ctx" .ctx "app" .component "component" .component) -}}
{{- end -}}

{{/* Metadata of the umbrella's own objects. Usage: include "eafix.metadata" (dict "ctx" $ "name" "x" "component" "x" "annotations" (dict)) */}}
{{- define "eafix.metadata" -}}
{{- $component := .component | default .name -}}
{{- include "eafix-common.metadata" (dict "ctx" .ctx "name" .name "app" $component "component" $component "annotations" .annotations) -}}
{{- end -}}

{{/*
Image of a hook pod (helm test, migrations; JSON as eafix-common.image): its own repository, tag
and digest, else global.image, else `<global.image.repository>/<first enabled service>` at appVersion.
Usage: include "eafix.hookImage" (dict "ctx" $ "image" .Values.tests.image)
*/}}
{{- define "eafix.hookImage" -}}
{{- $g := .ctx.Values.global.image | default dict -}}
{{- $first := include "eafix.enabledServices" .ctx | fromJsonArray | first -}}
{{- $repo := printf "%s/%s" ($g.repository | default "eafix") $first -}}
{{- include "eafix-common.image" (dict "local" (pick .image "repository" "tag" "digest") "global" (pick $g "registry" "tag" "digest" "pullPolicy")
  "default" (dict "repository" $repo "tag" .ctx.Chart.AppVersion "pullPolicy" "IfNotPresent")) -}}
{{- end -}}
