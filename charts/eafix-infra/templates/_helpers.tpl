{{/* Helpers of the eafix-infra chart's own templates (the subcharts have theirs). */}}

{{/* Labels. Usage: include "eafix-infra.labels" (dict "ctx" $ "component" "backup") */}}
{{- define "eafix-infra.labels" -}}
{{- $labels := dict
  "app.kubernetes.io/name" (printf "eafix-%s" .component)
  "app.kubernetes.io/instance" .ctx.Release.Name
  "app.kubernetes.io/version" (.ctx.Chart.AppVersion | toString)
  "app.kubernetes.io/component" .component
  "app.kubernetes.io/part-of" "eafix"
  "app.kubernetes.io/managed-by" .ctx.Release.Service
  "helm.sh/chart" (printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version)
-}}
{{- toYaml (mergeOverwrite (deepCopy (.ctx.Values.commonLabels | default dict)) $labels) -}}
{{- end -}}

{{/* Selector labels of a component's pods. */}}
{{- define "eafix-infra.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "eafix-%s" .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{/*
Metadata. Usage: include "eafix-infra.metadata" (dict "ctx" $ "name" "x" "component" "x"
  "annotations" (dict) "labels" (dict) "namespace" "" "clusterScoped" false)
*/}}
{{- define "eafix-infra.metadata" -}}
name: {{ .name }}
{{- if not .clusterScoped }}
namespace: {{ .namespace | default .ctx.Release.Namespace }}
{{- end }}
labels:
  {{- toYaml (mergeOverwrite (fromYaml (include "eafix-infra.labels" (dict "ctx" .ctx "component" .component))) (.labels | default dict)) | nindent 2 }}
{{- $ann := mergeOverwrite (deepCopy (.ctx.Values.commonAnnotations | default dict)) (.annotations | default dict) }}
{{- if $ann }}
annotations:
  {{- toYaml $ann | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Image reference; `global.imageRegistry` beats the image's registry (Bitnami semantics). Usage: include "eafix-infra.image" (dict "image" .Values.backup.images.postgres "global" .Values.global) */}}
{{- define "eafix-infra.image" -}}
{{- $registry := .global.imageRegistry | default .image.registry -}}
{{- $ref := .image.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry $ref }}{{ end -}}
{{- if .image.tag }}{{ $ref = printf "%s:%s" $ref (toString .image.tag) }}{{ end -}}
{{- if .image.digest }}{{ $ref = printf "%s@%s" $ref .image.digest }}{{ end -}}
{{- $ref -}}
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

{{/*
Policy exemptions of a backup CronJob, as the annotations each tool honours; each is listed in
docs/policy-exceptions.md. Usage: include "eafix-infra.exemptions" (dict "pullPolicy" "IfNotPresent" "digests" (list ...) "priorityClassName" "")
*/}}
{{- define "eafix-infra.exemptions" -}}
{{- $checkov := list -}}
{{- $polaris := list "metadataAndInstanceMismatched" -}}
{{- if ne .pullPolicy "Always" -}}
{{- $checkov = append $checkov "CKV_K8S_15=Release tags are immutable; Always would make every backup run depend on the registry being reachable" -}}
{{- $polaris = append $polaris "pullPolicyNotAlways" -}}
{{- end -}}
{{- if has "" .digests -}}
{{- $checkov = append $checkov "CKV_K8S_43=Digests are set per release in the platform overlay (backup.images.*.digest); chart defaults cannot know them" -}}
{{- end -}}
{{- if not .priorityClassName -}}
{{- $polaris = append $polaris "priorityClassNotSet" -}}
{{- end -}}
{{- range $i, $c := $checkov }}
checkov.io/skip{{ add1 $i }}: {{ $c | quote }}
{{- end }}
{{- range $polaris | uniq | sortAlpha }}
polaris.fairwinds.com/{{ . }}-exempt: "true"
{{- end }}
ignore-check.kube-linter.io/no-liveness-probe: "A backup run is a one-shot job; a liveness probe has nothing to keep alive"
ignore-check.kube-linter.io/no-readiness-probe: "A backup job serves no traffic, so readiness means nothing"
{{- end -}}
