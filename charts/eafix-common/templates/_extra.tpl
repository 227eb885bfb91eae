{{/*
The `extraObjects` escape hatch: each item, a map or a string, goes through `tpl` with the
chart's context, so it may use `{{ .Release.Namespace }}`, `{{ include ... }}` and values.
Usage (a chart's templates/extra-objects.yaml): include "eafix-common.extraObjects" .
*/}}
{{- define "eafix-common.extraObjects" -}}
{{- range $obj := .Values.extraObjects | default list }}
---
{{ tpl (ternary $obj (toYaml $obj) (kindIs "string" $obj)) $ }}
{{- end }}
{{- end -}}
