{{/*
An image resolved field by field with eafix-common.pick (local > global > default), as JSON:
{registry, repository, tag, digest, pullPolicy, ref}; ref is `[registry/]repository[:tag][@digest]`.
Usage: include "eafix-common.image" (dict "local" .Values.image "global" (dict ...) "default" (dict ...)) | fromJson
Each chart maps its own global shape onto {registry, repository, tag, digest, pullPolicy}.
*/}}
{{- define "eafix-common.image" -}}
{{- $l := .local | default dict -}}
{{- $g := .global | default dict -}}
{{- $d := .default | default dict -}}
{{- $out := dict -}}
{{- range $f := list "registry" "repository" "tag" "digest" "pullPolicy" -}}
{{- $_ := set $out $f ((include "eafix-common.pick" (list (get $l $f) (get $g $f) (get $d $f)) | fromJson).v | default "" | toString) -}}
{{- end -}}
{{- $ref := $out.repository -}}
{{- with $out.registry }}{{ $ref = printf "%s/%s" . $ref }}{{ end -}}
{{- with $out.tag }}{{ $ref = printf "%s:%s" $ref . }}{{ end -}}
{{- with $out.digest }}{{ $ref = printf "%s@%s" $ref . }}{{ end -}}
{{- $_ := set $out "ref" $ref -}}
{{- toJson $out -}}
{{- end -}}

{{/*
imagePullSecrets entries (names or {name: ...}), local > global by eafix-common.pick: a local
list, even an empty one, replaces the global one. Renders nothing when there are none.
Usage: include "eafix-common.pullSecrets" (dict "local" .Values.imagePullSecrets "global" .Values.global.imagePullSecrets)
*/}}
{{- define "eafix-common.pullSecrets" -}}
{{- $names := list -}}
{{- range $s := (include "eafix-common.pick" (list .local .global) | fromJson).v | default list -}}
{{- $n := $s -}}
{{- if kindIs "map" $s }}{{ $n = $s.name }}{{ end -}}
{{- if and $n (not (has $n $names)) }}{{ $names = append $names $n }}{{ end -}}
{{- end -}}
{{- range $names }}
- name: {{ . }}
{{- end -}}
{{- end -}}
