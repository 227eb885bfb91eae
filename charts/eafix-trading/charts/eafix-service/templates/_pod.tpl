{{/*
Pod-spec pieces of the generic service chart: secret files, security contexts, scheduling.
*/}}

{{/*
Secret files as a map secretName -> list of {key, path}; the process reads each file under
/var/run/secrets/eafix/<path> (never env values).
*/}}
{{- define "eafix-service.secretItems" -}}
{{- $g := .Values.global -}}
{{- $by := dict -}}
{{- if .Values.backends.redis -}}
{{- $s := $g.redis.existingSecret -}}
{{- $_ := set $by $s (append (get $by $s | default list) (dict "key" $g.redis.passwordKey "path" "SERVICE_REDIS_PASSWORD")) -}}
{{- end -}}
{{- if .Values.backends.postgres -}}
{{- $s := $g.postgres.existingSecret -}}
{{- $items := get $by $s | default list -}}
{{- $items = append $items (dict "key" $g.postgres.usernameKey "path" "SERVICE_POSTGRES_USER") -}}
{{- $items = append $items (dict "key" $g.postgres.passwordKey "path" "SERVICE_POSTGRES_PASSWORD") -}}
{{- $_ := set $by $s $items -}}
{{- end -}}
{{- range $setting := keys (.Values.secretFiles | default dict) | sortAlpha -}}
{{- $f := get $.Values.secretFiles $setting -}}
{{- if $f -}}
{{- $s := $f.secretName | default $g.secrets.existingSecret -}}
{{- $_ := set $by $s (append (get $by $s | default list) (dict "key" $f.key "path" (include "eafix-service.envName" $setting))) -}}
{{- end -}}
{{- end -}}
{{- toYaml $by -}}
{{- end -}}

{{/* Pod security context: global merged with the service's. */}}
{{- define "eafix-service.podSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy (.Values.global.podSecurityContext | default dict)) (.Values.podSecurityContext | default dict)) -}}
{{- end -}}

{{/* Container security context: global merged with the service's. */}}
{{- define "eafix-service.containerSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy (.Values.global.containerSecurityContext | default dict)) (.Values.containerSecurityContext | default dict)) -}}
{{- end -}}

{{/*
Affinity: local, else global (eafix-common.pick: `{}` is a value and means none), else the
anti-affinity preset across nodes.
*/}}
{{- define "eafix-service.affinity" -}}
{{- $aff := (include "eafix-common.pick" (list .Values.affinity .Values.global.affinity) | fromJson).v -}}
{{- if not (kindIs "invalid" $aff) -}}
{{- with $aff }}{{ toYaml . }}{{ end -}}
{{- else -}}
{{- $preset := .Values.podAntiAffinityPreset | default .Values.global.podAntiAffinityPreset -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (fromYaml (include "eafix-service.selectorLabels" .))) -}}
{{- if eq $preset "hard" -}}
{{- toYaml (dict "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term))) -}}
{{- else if eq $preset "soft" -}}
{{- toYaml (dict "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term)))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Topology spread: local, else global (eafix-common.pick); a missing labelSelector gets this service's selector. */}}
{{- define "eafix-service.topologySpread" -}}
{{- $out := list -}}
{{- range $c := (include "eafix-common.pick" (list .Values.topologySpreadConstraints .Values.global.topologySpreadConstraints) | fromJson).v | default list -}}
{{- $c = deepCopy $c -}}
{{- if not $c.labelSelector -}}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (fromYaml (include "eafix-service.selectorLabels" $))) -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- if $out }}{{ toYaml $out }}{{ end -}}
{{- end -}}

{{/* One probe. Usage: include "eafix-service.probe" .Values.probes.liveness */}}
{{- define "eafix-service.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end -}}
