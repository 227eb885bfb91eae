{{/*
Contradictions the schema cannot express, collected into one "VALUES VALIDATION" block that
NOTES.txt fails with (rendered by `helm template` and Argo CD too).
*/}}
{{- define "eafix-infra.validateValues" -}}
{{- $msgs := list -}}
{{- $s := .Values.secrets -}}
{{- $defs := include "eafix-infra.secretDefinitions" . | fromJson -}}
{{- range $name, $def := $defs -}}
{{- if not $def.keys -}}
{{- $msgs = append $msgs (printf "secrets.definitions.%s.keys: a Secret needs at least one key." $name) -}}
{{- end -}}
{{- range $key, $k := $def.keys -}}
{{- $k = $k | default dict -}}
{{- if and (eq $s.provider "plain") (not $k.value) -}}
{{- $msgs = append $msgs (printf "secrets.definitions.%s.keys.%s.value: required with secrets.provider plain (dev only). Give every value explicitly; the chart never generates one." $name $key) -}}
{{- end -}}
{{- if and (eq $s.provider "sealedSecret") (not $k.encrypted) -}}
{{- $msgs = append $msgs (printf "secrets.definitions.%s.keys.%s.encrypted: required with secrets.provider sealedSecret (kubeseal --raw output)." $name $key) -}}
{{- end -}}
{{- if and (ne $s.provider "plain") $k.value -}}
{{- $msgs = append $msgs (printf "secrets.definitions.%s.keys.%s.value: plain values are only used with secrets.provider plain (dev); remove it." $name $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq $s.provider "externalSecret") (not $s.externalSecret.secretStoreRef.name) -}}
{{- $msgs = append $msgs "secrets.externalSecret.secretStoreRef.name: required with secrets.provider externalSecret." -}}
{{- end -}}
{{- /* Every Secret reference of this release must be part of the contract (unless the Secrets are made elsewhere). */ -}}
{{- $refs := list -}}
{{- if .Values.redis.enabled -}}
{{- $refs = append $refs (list "redis.auth" .Values.redis.auth.existingSecret .Values.redis.auth.existingSecretPasswordKey) -}}
{{- end -}}
{{- if .Values.postgresql.enabled -}}
{{- $a := .Values.postgresql.auth -}}
{{- $refs = append $refs (list "postgresql.auth (userPasswordKey)" $a.existingSecret $a.secretKeys.userPasswordKey) -}}
{{- if $a.enablePostgresUser -}}
{{- $refs = append $refs (list "postgresql.auth (adminPasswordKey)" $a.existingSecret $a.secretKeys.adminPasswordKey) -}}
{{- end -}}
{{- end -}}
{{- $b := .Values.backup -}}
{{- if $b.postgres.enabled -}}
{{- $refs = append $refs (list "backup.postgres (usernameKey)" $b.postgres.existingSecret $b.postgres.usernameKey) -}}
{{- $refs = append $refs (list "backup.postgres (passwordKey)" $b.postgres.existingSecret $b.postgres.passwordKey) -}}
{{- end -}}
{{- if $b.redis.enabled -}}
{{- $refs = append $refs (list "backup.redis" $b.redis.existingSecret $b.redis.passwordKey) -}}
{{- end -}}
{{- if .Values.alertmanagerConfig.enabled -}}
{{- $refs = append $refs (list "alertmanagerConfig" .Values.alertmanagerConfig.secretName .Values.alertmanagerConfig.secretKey) -}}
{{- end -}}
{{- if ne $s.provider "none" -}}
{{- range $ref := $refs -}}
{{- $def := get $defs (index $ref 1) -}}
{{- if not $def -}}
{{- $msgs = append $msgs (printf "%s: Secret %q is not in secrets.definitions (the contract this chart renders)." (index $ref 0) (index $ref 1)) -}}
{{- else if not (hasKey ($def.keys | default dict) (index $ref 2)) -}}
{{- $msgs = append $msgs (printf "%s: key %q is not in secrets.definitions.%s.keys." (index $ref 0) (index $ref 2) (index $ref 1)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* With plain dev values the user name must be the one PostgreSQL creates. */ -}}
{{- if and (eq $s.provider "plain") .Values.postgresql.enabled -}}
{{- $def := get $defs .Values.postgresql.auth.existingSecret -}}
{{- if $def -}}
{{- $user := get ($def.keys | default dict) $b.postgres.usernameKey -}}
{{- if and $user $user.value (ne (toString $user.value) .Values.postgresql.auth.username) -}}
{{- $msgs = append $msgs (printf "secrets.definitions.%s.keys.%s.value: %q differs from postgresql.auth.username %q, the user PostgreSQL creates." .Values.postgresql.auth.existingSecret $b.postgres.usernameKey (toString $user.value) .Values.postgresql.auth.username) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (or $b.postgres.enabled $b.redis.enabled) (not $b.persistence.enabled) (not $b.objectStore.enabled) -}}
{{- $msgs = append $msgs "backup: with persistence and objectStore both off the dumps would vanish with the pod; enable one." -}}
{{- end -}}
{{- if and $b.objectStore.enabled (not $b.objectStore.bucket) -}}
{{- $msgs = append $msgs "backup.objectStore.bucket: required with backup.objectStore.enabled." -}}
{{- end -}}
{{- if and .Values.monitoring.enabled .Values.monitoring.grafanaDatasource.enabled (not .Values.monitoring.grafanaDatasource.url) -}}
{{- $msgs = append $msgs "monitoring.grafanaDatasource.url: required with the datasource on." -}}
{{- end -}}
{{- if $msgs -}}
{{- printf "\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " (uniq $msgs)) -}}
{{- end -}}
{{- end -}}
