{{/*
The flow matrix: every allowed connection of the release as one list of rows, computed once from
`flows`, each service's `backends`, the Istio ingress routes, DNS and the Istio control plane.
The NetworkPolicies, the AuthorizationPolicies and the eafix-flow-matrix ConfigMap are rendered
from these rows only; a disabled service or inactive actor produces no row.

A row: {flow, from, to, port, protocol, http, methods, paths, headers}. `from`/`to` are a service
name, a workload of the release (helm-test, migrations) or an actor (prometheus, redis, dns, ...).
`http` marks rows that reach a service's HTTP port (AuthorizationPolicies are made of those).
*/}}

{{/* Workloads of the release that are not services: name -> pod selector labels (JSON). */}}
{{- define "eafix.extraWorkloads" -}}
{{- $out := dict -}}
{{- $enabled := include "eafix.enabledServices" . | fromJsonArray -}}
{{- if and .Values.tests.enabled $enabled -}}
{{- $_ := set $out "helm-test" (dict "app.kubernetes.io/name" "readyz-test" "app.kubernetes.io/instance" .Release.Name) -}}
{{- end -}}
{{- if and .Values.migrations .Values.migrations.enabled -}}
{{- $pg := false -}}
{{- range $svc := $enabled }}{{ if (index $.Values $svc).backends.postgres }}{{ $pg = true }}{{ end }}{{ end -}}
{{- if $pg -}}
{{- $_ := set $out "migrations" (dict "app.kubernetes.io/name" "migrations" "app.kubernetes.io/instance" .Release.Name) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Pod selector labels of a service (as the service chart renders them). */}}
{{- define "eafix.serviceSelector" -}}
{{- $v := index .ctx.Values .name -}}
{{- toJson (dict "app.kubernetes.io/name" ($v.nameOverride | default .name) "app.kubernetes.io/instance" .ctx.Release.Name) -}}
{{- end -}}

{{/* Actors that currently exist for the release (JSON list). */}}
{{- define "eafix.activeActors" -}}
{{- $on := list "prometheus" "alertmanager" "dns" -}}
{{- if .Values.ingress.enabled }}{{ $on = append $on "ingress-controller" }}{{ end -}}
{{- if .Values.global.istio.enabled -}}
{{- $on = append $on "istiod" -}}
{{- if .Values.istio.gateway.enabled }}{{ $on = append $on "istio-ingressgateway" }}{{ end -}}
{{- end -}}
{{- range $w, $_ := include "eafix.extraWorkloads" . | fromJson }}{{ $on = append $on $w }}{{ end -}}
{{- toJson $on -}}
{{- end -}}

{{- define "eafix.flowMatrix" -}}
{{- $svcs := include "eafix.enabledServices" . | fromJsonArray -}}
{{- $actors := include "eafix.activeActors" . | fromJsonArray -}}
{{- $workloads := include "eafix.extraWorkloads" . | fromJson -}}
{{- $rows := list -}}
{{- /* flows: services and actors calling services */ -}}
{{- range $name := keys (.Values.flows | default dict) | sortAlpha -}}
{{- $f := get $.Values.flows $name -}}
{{- if and $f (or (has $f.from $svcs) (has $f.from $actors)) -}}
{{- range $to := include "eafix.expandServices" (dict "ctx" $ "names" $f.to "self" $f.from) | fromJsonArray -}}
{{- if has $to $svcs -}}
{{- $rows = append $rows (dict "flow" $name "from" $f.from "to" $to "port" (int (index $.Values $to).port) "protocol" "TCP" "http" true
      "methods" ($f.methods | default list) "paths" ($f.paths | default list) "headers" ($f.requiredHeaders | default list)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* the Istio ingress gateway's routes */ -}}
{{- if has "istio-ingressgateway" $actors -}}
{{- range $svc := keys (.Values.istio.routes | default dict) | sortAlpha -}}
{{- $r := get $.Values.istio.routes $svc -}}
{{- if and $r (has $svc $svcs) -}}
{{- $paths := list -}}
{{- if ne $r.prefix "/" }}{{ $paths = list $r.prefix (printf "%s/*" $r.prefix) }}{{ end -}}
{{- $rows = append $rows (dict "flow" "istio-ingress-routes" "from" "istio-ingressgateway" "to" $svc "port" (int (index $.Values $svc).port) "protocol" "TCP" "http" true
      "methods" ($r.methods | default list) "paths" $paths "headers" list) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* backends */ -}}
{{- range $svc := $svcs -}}
{{- $b := (index $.Values $svc).backends -}}
{{- if $b.redis -}}
{{- $rows = append $rows (dict "flow" "redis" "from" $svc "to" "redis" "port" (int $.Values.global.redis.port) "protocol" "TCP" "http" false) -}}
{{- if dig "sentinel" "enabled" false $.Values.global.redis -}}
{{- $rows = append $rows (dict "flow" "redis" "from" $svc "to" "redis" "port" (int $.Values.global.redis.sentinel.port) "protocol" "TCP" "http" false) -}}
{{- end -}}
{{- end -}}
{{- if $b.postgres -}}
{{- $rows = append $rows (dict "flow" "postgres" "from" $svc "to" "postgres" "port" (int $.Values.global.postgres.port) "protocol" "TCP" "http" false) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $workloads "migrations" -}}
{{- $rows = append $rows (dict "flow" "postgres" "from" "migrations" "to" "postgres" "port" (int $.Values.global.postgres.port) "protocol" "TCP" "http" false) -}}
{{- end -}}
{{- /* DNS and the Istio control plane, for every pod of the release */ -}}
{{- $pods := concat $svcs (keys $workloads | sortAlpha) -}}
{{- range $pod := $pods -}}
{{- range $p := $.Values.actors.dns.ports -}}
{{- $rows = append $rows (dict "flow" "dns" "from" $pod "to" "dns" "port" (int $p.port) "protocol" ($p.protocol | default "TCP") "http" false) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.global.istio.enabled .Values.networkPolicy.allowIstio -}}
{{- range $pod := $pods -}}
{{- range $p := $.Values.actors.istiod.ports -}}
{{- $rows = append $rows (dict "flow" "istio-control-plane" "from" $pod "to" "istiod" "port" (int $p.port) "protocol" ($p.protocol | default "TCP") "http" false) -}}
{{- end -}}
{{- end -}}
{{- range $svc := $svcs -}}
{{- range $port := $.Values.networkPolicy.istioTelemetryPorts -}}
{{- $rows = append $rows (dict "flow" "istio-telemetry" "from" "prometheus" "to" $svc "port" (int $port) "protocol" "TCP" "http" false) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $rows -}}
{{- end -}}

{{/*
NetworkPolicy peers of one side of a row. Usage: include "eafix.networkPeers" (dict "ctx" $ "name" "redis")
A service or release workload: its pods in the release namespace. An actor: its ipBlocks, or its
namespaceSelector/podSelector (a missing namespaceSelector means the release namespace).
*/}}
{{- define "eafix.networkPeers" -}}
{{- $ctx := .ctx -}}
{{- $workloads := include "eafix.extraWorkloads" $ctx | fromJson -}}
{{- $peers := list -}}
{{- if has .name (include "eafix.enabledServices" $ctx | fromJsonArray) -}}
{{- $peers = list (dict "podSelector" (dict "matchLabels" (include "eafix.serviceSelector" (dict "ctx" $ctx "name" .name) | fromJson))) -}}
{{- else if hasKey $workloads .name -}}
{{- $peers = list (dict "podSelector" (dict "matchLabels" (get $workloads .name))) -}}
{{- else -}}
{{- $a := get $ctx.Values.actors .name -}}
{{- if $a.ipBlocks -}}
{{- range $b := $a.ipBlocks -}}
{{- $peers = append $peers (dict "ipBlock" (ternary (dict "cidr" $b) $b (kindIs "string" $b))) -}}
{{- end -}}
{{- else -}}
{{- $p := dict -}}
{{- with $a.namespaceSelector }}{{ $_ := set $p "namespaceSelector" . }}{{ end -}}
{{- with $a.podSelector }}{{ $_ := set $p "podSelector" . }}{{ end -}}
{{- $peers = list $p -}}
{{- end -}}
{{- end -}}
{{- toJson $peers -}}
{{- end -}}

{{/* Istio principal of a caller. Usage: include "eafix.principal" (dict "ctx" $ "name" "risk-manager") */}}
{{- define "eafix.principal" -}}
{{- $ctx := .ctx -}}
{{- $td := $ctx.Values.istio.trustDomain -}}
{{- if has .name (include "eafix.enabledServices" $ctx | fromJsonArray) -}}
{{- $v := index $ctx.Values .name -}}
{{- $sa := $v.serviceAccount.name | default (include "eafix.serviceName" (dict "ctx" $ctx "name" .name)) -}}
{{- printf "%s/ns/%s/sa/%s" $td $ctx.Release.Namespace $sa -}}
{{- else if eq .name "helm-test" -}}
{{- printf "%s/ns/%s/sa/%s" $td $ctx.Release.Namespace (include "eafix.objectName" (dict "ctx" $ctx "name" "readyz-test")) -}}
{{- else -}}
{{- (get $ctx.Values.actors .name).principal | default "" -}}
{{- end -}}
{{- end -}}

{{/* Name of an umbrella-level object: `eafix-<name>`, or `<release>-<name>` with global.prefixNames. */}}
{{- define "eafix.objectName" -}}
{{- ternary (printf "%s-%s" .ctx.Release.Name .name) (printf "eafix-%s" .name) .ctx.Values.global.prefixNames | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* FQDN of a service in the release namespace. */}}
{{- define "eafix.serviceHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "eafix.serviceName" .) .ctx.Release.Namespace -}}
{{- end -}}

{{/* The Secrets the enabled services mount: name -> sorted list of keys (JSON). */}}
{{- define "eafix.secretContract" -}}
{{- $g := .Values.global -}}
{{- $by := dict -}}
{{- range $svc := include "eafix.enabledServices" . | fromJsonArray -}}
{{- $v := index $.Values $svc -}}
{{- if $v.backends.redis -}}
{{- $_ := set $by $g.redis.existingSecret (append (get $by $g.redis.existingSecret | default list) $g.redis.passwordKey) -}}
{{- end -}}
{{- if $v.backends.postgres -}}
{{- $_ := set $by $g.postgres.existingSecret (concat (get $by $g.postgres.existingSecret | default list) (list $g.postgres.usernameKey $g.postgres.passwordKey)) -}}
{{- end -}}
{{- range $setting, $f := $v.secretFiles | default dict -}}
{{- if $f -}}
{{- $s := $f.secretName | default $g.secrets.existingSecret -}}
{{- $_ := set $by $s (append (get $by $s | default list) $f.key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $out := dict -}}
{{- range $s, $keys := $by }}{{ $_ := set $out $s ($keys | uniq | sortAlpha) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Contradictions in the security settings (JSON list of messages); eafix.validateValues reports them. */}}
{{- define "eafix.validateSecurity" -}}
{{- $msgs := list -}}
{{- $svcs := include "eafix.enabledServices" . | fromJsonArray -}}
{{- $rows := include "eafix.flowMatrix" . | fromJsonArray -}}
{{- range $svc := $svcs -}}
{{- $calls := list -}}
{{- range $r := $rows }}{{ if and (eq $r.from $svc) (has $r.to $svcs) }}{{ $calls = append $calls $r.to }}{{ end }}{{ end -}}
{{- $peers := list -}}
{{- range $p := include "eafix.expandServices" (dict "ctx" $ "names" (index $.Values $svc).peers "self" $svc) | fromJsonArray }}{{ if has $p $svcs }}{{ $peers = append $peers $p }}{{ end }}{{ end -}}
{{- range $p := $peers -}}
{{- if not (has $p $calls) -}}
{{- $msgs = append $msgs (printf "%s.peers lists %s, but no flow lets %s call it: add a `flows` entry (from: %s, to: [%s]) or drop the peer." $svc $p $svc $svc $p) -}}
{{- end -}}
{{- end -}}
{{- range $c := $calls | uniq -}}
{{- if not (has $c $peers) -}}
{{- $msgs = append $msgs (printf "flows let %s call %s, but %s.peers does not list it (no SERVICE_%s_URL): add it to the peers or remove the flow." $svc $c $svc ($c | upper | replace "-" "_")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $actors := include "eafix.activeActors" . | fromJsonArray -}}
{{- range $name := list "prometheus" "alertmanager" "ingress-controller" "istio-ingressgateway" "istiod" "dns" "redis" "postgres" -}}
{{- $a := get $.Values.actors $name | default dict -}}
{{- if and (or (has $name $actors) (has $name (list "redis" "postgres"))) (not $a.ipBlocks) (not $a.namespaceSelector) (not $a.podSelector) -}}
{{- $msgs = append $msgs (printf "actors.%s: set a podSelector, a namespaceSelector or ipBlocks; without them a NetworkPolicy rule would match every pod of the namespace." $name) -}}
{{- end -}}
{{- end -}}
{{- if .Values.global.istio.enabled -}}
{{- range $r := $rows -}}
{{- if and $r.http (not (include "eafix.principal" (dict "ctx" $ "name" $r.from))) -}}
{{- $msgs = append $msgs (printf "actors.%s.principal: required with global.istio.enabled (the AuthorizationPolicy of flow %s names the caller's principal)." $r.from $r.flow) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.istio.gateway.enabled (not .Values.istio.gateway.host) -}}
{{- $msgs = append $msgs "istio.gateway.host: required when global.istio.enabled and istio.gateway.enabled (or switch the gateway off)." -}}
{{- end -}}
{{- end -}}
{{- $in := .Values.ingress -}}
{{- if $in.enabled -}}
{{- if not $in.host }}{{ $msgs = append $msgs "ingress.host: required when ingress.enabled." }}{{ end -}}
{{- range $k, $_ := $in.annotations | default dict -}}
{{- if hasSuffix "-snippet" $k -}}
{{- $msgs = append $msgs (printf "ingress.annotations: %s is refused (snippets inject raw NGINX configuration; see docs/security.md)." $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq .Values.secretManagement.mode "sealedSecrets" -}}
{{- $data := .Values.secretManagement.sealedSecrets.encryptedData | default dict -}}
{{- range $secret, $keys := include "eafix.secretContract" . | fromJson -}}
{{- range $key := $keys -}}
{{- if not (get (get $data $secret | default dict) $key) -}}
{{- $msgs = append $msgs (printf "secretManagement.sealedSecrets.encryptedData.%s.%s: missing; the services mount this key (seal it with kubeseal --raw)." $secret $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $msgs -}}
{{- end -}}
