{{/*
The services' PostgreSQL URL (SERVICE_POSTGRES_URL) from `global.postgres`: `host`, then each of
`failoverHosts` on the same port; with more than one host libpq's target_session_attrs=read-write
connects to the one that accepts writes, so a promoted replica is found after a failover.
Credentials are never part of it (they are mounted files).
Usage: include "eafix-common.postgresUrl" .Values.global.postgres
*/}}
{{- define "eafix-common.postgresUrl" -}}
{{- $p := . -}}
{{- $hosts := list (printf "%s:%v" $p.host $p.port) -}}
{{- range $h := $p.failoverHosts | default list -}}
{{- $hosts = append $hosts (printf "%s:%v" $h $p.port) -}}
{{- end -}}
{{- printf "postgresql://%s/%s?sslmode=%s" (join "," $hosts) $p.database $p.sslmode -}}
{{- if gt (len $hosts) 1 }}&target_session_attrs=read-write{{ end -}}
{{- end -}}
