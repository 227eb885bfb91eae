{{/*
The one precedence rule of the EAFIX charts: the local value, else the global one, else the
default. A string counts as set when it is not empty; a list or a map counts as set when it is
not null, so an explicit `[]` or `{}` clears what a global would have given.
Usage: include "eafix-common.pick" (list $local $global $default) | fromJson  -> {"v": <value>}
(JSON-wrapped so lists, maps and empty strings survive `include`).
*/}}
{{- define "eafix-common.pick" -}}
{{- $out := dict "v" nil -}}
{{- range $candidate := . -}}
{{- if and (kindIs "invalid" $out.v) (not (kindIs "invalid" $candidate)) -}}
{{- if or (not (kindIs "string" $candidate)) $candidate -}}
{{- $_ := set $out "v" $candidate -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
