{{/*
Policy exemptions of a workload, as the annotations each tool honours. Each one is rendered only
while its condition holds and is listed with its reason in docs/policy-exceptions.md (tested).
Usage: include "eafix-common.exemptions" (dict "pullPolicy" "IfNotPresent" "digests" (list "")
  "priorityClassName" "")
Optional: "replicas" and "hpa" (Deployments), "networkPolicy" (whether a NetworkPolicy covers the
pod; left out = not the chart's concern), "extraCheckov" (list of "ID=reason"), "extraPolaris"
(list of checks), "kubeLinter" (check -> reason).
*/}}
{{- define "eafix-common.exemptions" -}}
{{- $checkov := .extraCheckov | default list -}}
{{- $polaris := concat (list "metadataAndInstanceMismatched") (.extraPolaris | default list) -}}
{{- if ne .pullPolicy "Always" -}}
{{- $checkov = append $checkov "CKV_K8S_15=Release tags are immutable; Always would make every pod start depend on the registry being reachable" -}}
{{- $polaris = append $polaris "pullPolicyNotAlways" -}}
{{- end -}}
{{- if has "" .digests -}}
{{- $checkov = append $checkov "CKV_K8S_43=Digests are set per release in the platform overlay (image.digest); chart defaults cannot know them" -}}
{{- end -}}
{{- if not .priorityClassName -}}
{{- $polaris = append $polaris "priorityClassNotSet" -}}
{{- end -}}
{{- if and (hasKey . "replicas") (or .hpa (lt (int .replicas) 2)) -}}
{{- $polaris = append $polaris "deploymentMissingReplicas" -}}
{{- end -}}
{{- if and (hasKey . "networkPolicy") (not .networkPolicy) -}}
{{- $checkov = append $checkov "CKV2_K8S_6=NetworkPolicies are switched off (global.networkPolicy.enabled=false); the platform's namespace policies apply" -}}
{{- $polaris = append $polaris "missingNetworkPolicy" -}}
{{- end -}}
{{- range $i, $c := $checkov }}
checkov.io/skip{{ add1 $i }}: {{ $c | quote }}
{{- end }}
{{- range $polaris | uniq | sortAlpha }}
polaris.fairwinds.com/{{ . }}-exempt: "true"
{{- end }}
{{- range $check := keys (.kubeLinter | default dict) | sortAlpha }}
ignore-check.kube-linter.io/{{ $check }}: {{ get $.kubeLinter $check | quote }}
{{- end }}
{{- end -}}
