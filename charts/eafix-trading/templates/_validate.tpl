{{/*
Contradictions the schema cannot express, collected into one readable "VALUES VALIDATION" block
that NOTES.txt fails with (Helm renders NOTES.txt in `helm template` too, so CI and ArgoCD see it).
*/}}
{{- define "eafix.validateValues" -}}
{{- $msgs := list -}}
{{- range $svc := include "eafix.enabledServices" . | fromJsonArray -}}
{{- $v := index $.Values $svc -}}
{{- $a := $v.autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- $msgs = append $msgs (printf "%s.autoscaling: minReplicas (%v) is greater than maxReplicas (%v)." $svc $a.minReplicas $a.maxReplicas) -}}
{{- end -}}
{{- $replicas := ternary (int $a.minReplicas) (int $v.replicaCount) (and $a.enabled true) -}}
{{- $p := $v.pdb -}}
{{- if $p.enabled -}}
{{- if not (kindIs "invalid" $p.minAvailable) -}}
{{- $min := toString $p.minAvailable -}}
{{- if or (eq $min "100%") (and (regexMatch "^[0-9]+$" $min) (ge (int $min) $replicas)) -}}
{{- $msgs = append $msgs (printf "%s.pdb: minAvailable %s with %d replica(s) never allows a disruption; node drains would hang. Lower it or use maxUnavailable." $svc $min $replicas) -}}
{{- end -}}
{{- else if has (toString $p.maxUnavailable) (list "0" "0%") -}}
{{- $msgs = append $msgs (printf "%s.pdb: maxUnavailable %v never allows a disruption; node drains would hang. Use at least 1." $svc $p.maxUnavailable) -}}
{{- end -}}
{{- end -}}
{{- $tag := $v.image.tag | default $.Values.global.image.tag | default $.Chart.AppVersion | toString -}}
{{- $digest := $v.image.digest | default $.Values.global.image.digest -}}
{{- if and (not $digest) (or (not $tag) (eq $tag "latest")) -}}
{{- $msgs = append $msgs (printf "%s.image: tag %q is not a pinned version and no digest is set; set %s.image.tag or image.digest (or global.image.*)." $svc $tag $svc) -}}
{{- end -}}
{{- range $k := keys ($v.config | default dict) | sortAlpha -}}
{{- if eq (include "eafix-service.envName" $k) "SERVICE_INSTRUMENTS" -}}
{{- $msgs = append $msgs (printf "%s.config.%s: instruments are not a service setting; the one table of every service is global.instruments." $svc $k) -}}
{{- end -}}
{{- end -}}
{{- if and $v.backends.redis (not $.Values.global.redis.existingSecret) -}}
{{- $msgs = append $msgs (printf "global.redis.existingSecret: required because %s uses Redis." $svc) -}}
{{- end -}}
{{- if and $v.backends.postgres (not $.Values.global.postgres.existingSecret) -}}
{{- $msgs = append $msgs (printf "global.postgres.existingSecret: required because %s uses PostgreSQL." $svc) -}}
{{- end -}}
{{- end -}}
{{- $ie := index .Values "indicator-engine" -}}
{{- $sg := index .Values "signal-generator" -}}
{{- if and $ie.enabled $sg.enabled -}}
{{- $strategies := dict -}}
{{- range $svc, $v := dict "indicator-engine" $ie "signal-generator" $sg -}}
{{- $c := $v.config | default dict -}}
{{- $f := $v.configFiles | default dict -}}
{{- $_ := set $strategies $svc (toJson (list $c.strategyConfig $c.strategiesFile $f.strategiesFile)) -}}
{{- end -}}
{{- if ne (index $strategies "indicator-engine") (index $strategies "signal-generator") -}}
{{- $msgs = append $msgs "indicator-engine and signal-generator: give both the same strategies (config.strategyConfig, config.strategiesFile or configFiles.strategiesFile, e.g. one YAML anchor): indicator-engine computes the indicators those strategies declare." -}}
{{- end -}}
{{- end -}}
{{- if not (include "eafix.enabledServices" . | fromJsonArray) -}}
{{- $msgs = append $msgs "every service is disabled; enable at least one (<service>.enabled)." -}}
{{- end -}}
{{- $msgs = concat $msgs (include "eafix.validateSecurity" . | fromJsonArray) -}}
{{- if $msgs -}}
{{- printf "\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " (uniq $msgs)) -}}
{{- end -}}
{{- end -}}
