"""Structural checks of the custom resources the charts render, against what their operators document.

kubernetes-validate covers only built-in kinds. For the custom resources this platform renders
(prometheus-operator, External Secrets Operator, Sealed Secrets, Argo CD) each (apiVersion, kind)
has a JSON Schema here with the fields its operator's CRD requires and the shapes it accepts
(required keys, enums, types). Unknown fields stay allowed: this is the operator's contract, not a
style rule.

    findings = check(objects)          # one Finding per violation, [] when every CR conforms
    unknown = unknown_kinds(objects)   # custom (apiVersion, kind) pairs without a schema here
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

from eafix.platform.policy import Finding, k8s_validate

TOOL = "custom-resources"

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
_STR = {"type": "string", "minLength": 1}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}


def _cr(spec: dict[str, Any], *, namespaced: bool = True, spec_required: bool = True) -> dict[str, Any]:
    meta_required = ["name", "namespace"] if namespaced else ["name"]
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"] + (["spec"] if spec_required else []),
        "properties": {
            "metadata": {"type": "object", "required": meta_required,
                         "properties": {"name": _NAME, "namespace": _NAME, "labels": _STR_MAP,
                                        "annotations": _STR_MAP}},
            "spec": spec,
        },
    }


# prometheus-operator: monitoring.coreos.com/v1 PrometheusRule, ServiceMonitor; v1alpha1 AlertmanagerConfig.
_RULE = {
    "type": "object",
    "required": ["expr"],
    "properties": {"expr": {"type": ["string", "integer"], "minLength": 1}, "record": _STR, "alert": _STR,
                   "for": _DURATION, "keep_firing_for": _DURATION, "labels": _STR_MAP, "annotations": _STR_MAP},
    "oneOf": [{"required": ["record"], "not": {"required": ["alert"]}},
              {"required": ["alert"], "not": {"required": ["record"]}}],
    "if": {"required": ["record"]},
    "then": {"not": {"anyOf": [{"required": ["for"]}, {"required": ["annotations"]}]}},
}
PROMETHEUS_RULE = _cr({
    "type": "object", "required": ["groups"],
    "properties": {"groups": {"type": "array", "items": {
        "type": "object", "required": ["name", "rules"],
        "properties": {"name": _STR, "interval": _DURATION, "rules": {"type": "array", "items": _RULE}}}}},
})
SERVICE_MONITOR = _cr({
    "type": "object", "required": ["selector"],
    "properties": {
        "selector": {"type": "object", "properties": {"matchLabels": _STR_MAP, "matchExpressions": {"type": "array"}}},
        "namespaceSelector": {"type": "object", "properties": {"any": {"type": "boolean"},
                                                               "matchNames": {"type": "array", "items": _STR}}},
        "endpoints": {"type": "array", "items": {
            "type": "object", "anyOf": [{"required": ["port"]}, {"required": ["targetPort"]}],
            "properties": {"port": _STR, "path": {"type": "string", "pattern": "^/"}, "interval": _DURATION,
                           "scrapeTimeout": _DURATION}}},
    },
})
_MATCHER = {"type": "object", "required": ["name"],
            "properties": {"name": _STR, "value": {"type": "string"}, "matchType": {"enum": ["=", "!=", "=~", "!~"]}}}
_SECRET_KEY_SELECTOR = {"type": "object", "required": ["key"], "properties": {"name": _NAME, "key": _STR}}
ALERTMANAGER_CONFIG = _cr({
    "type": "object",
    "properties": {
        "route": {"type": "object", "required": ["receiver"], "properties": {
            "receiver": _STR, "groupBy": {"type": "array", "items": _STR}, "groupWait": _DURATION,
            "groupInterval": _DURATION, "repeatInterval": _DURATION, "matchers": {"type": "array", "items": _MATCHER}}},
        "receivers": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": _STR,
            "webhookConfigs": {"type": "array", "items": {
                "type": "object", "anyOf": [{"required": ["url"]}, {"required": ["urlSecret"]}],
                "properties": {"url": {"type": "string", "pattern": "^https?://"}, "sendResolved": {"type": "boolean"},
                               "httpConfig": {"type": "object", "properties": {"authorization": {
                                   "type": "object", "properties": {"type": _STR,
                                                                    "credentials": _SECRET_KEY_SELECTOR}}}}}}}}}},
    },
})

# External Secrets Operator 0.17+: external-secrets.io/v1 ExternalSecret.
EXTERNAL_SECRET = _cr({
    "type": "object",
    "anyOf": [{"required": ["data"]}, {"required": ["dataFrom"]}],
    "properties": {
        "refreshInterval": _DURATION,
        "secretStoreRef": {"type": "object", "required": ["name"],
                           "properties": {"name": _NAME, "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}}},
        "target": {"type": "object", "properties": {
            "name": _NAME, "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
            "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]}}},
        "data": {"type": "array", "items": {
            "type": "object", "required": ["secretKey", "remoteRef"],
            "properties": {"secretKey": _STR, "remoteRef": {"type": "object", "required": ["key"],
                                                            "properties": {"key": _STR, "property": _STR}}}}},
    },
})

# Sealed Secrets: bitnami.com/v1alpha1 SealedSecret.
SEALED_SECRET = _cr({
    "type": "object", "required": ["encryptedData"],
    "properties": {
        "encryptedData": {"type": "object", "minProperties": 1, "additionalProperties": _STR},
        "template": {"type": "object", "properties": {"metadata": {"type": "object", "properties": {"name": _NAME}},
                                                      "type": _STR}},
    },
})

# Argo CD: argoproj.io/v1alpha1 Application, AppProject.
_DESTINATION = {"type": "object", "anyOf": [{"required": ["server"]}, {"required": ["name"]}],
                "properties": {"server": {"type": "string", "pattern": "^https?://"}, "name": _STR, "namespace": _NAME}}
APPLICATION = _cr({
    "type": "object", "required": ["project", "destination"],
    "anyOf": [{"required": ["source"]}, {"required": ["sources"]}],
    "properties": {
        "project": _NAME,
        "destination": _DESTINATION,
        "source": {"type": "object", "required": ["repoURL"],
                   "anyOf": [{"required": ["path"]}, {"required": ["chart"]}],
                   "properties": {"repoURL": _STR, "path": _STR, "targetRevision": _STR,
                                  "helm": {"type": "object", "properties": {
                                      "releaseName": _NAME, "valueFiles": {"type": "array", "items": _STR}}}}},
        "syncPolicy": {"type": "object", "properties": {
            "automated": {"type": "object",
                          "properties": {"prune": {"type": "boolean"}, "selfHeal": {"type": "boolean"}}},
            "syncOptions": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z]+=[A-Za-z0-9-]+$"}},
            "retry": {"type": "object", "properties": {"limit": {"type": "integer"}, "backoff": {
                "type": "object", "properties": {"duration": _STR, "factor": {"type": "integer"},
                                                 "maxDuration": _STR}}}}}},
    },
})
APP_PROJECT = _cr({
    "type": "object",
    "properties": {
        "sourceRepos": {"type": "array", "minItems": 1, "items": _STR},
        "destinations": {"type": "array", "items": _DESTINATION},
        "clusterResourceWhitelist": {"type": "array", "items": {"type": "object", "required": ["group", "kind"],
                                                                "properties": {"group": {"type": "string"},
                                                                               "kind": _STR}}}},
}, spec_required=False)

SCHEMAS: Mapping[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): ALERTMANAGER_CONFIG,
    ("external-secrets.io/v1", "ExternalSecret"): EXTERNAL_SECRET,
    ("bitnami.com/v1alpha1", "SealedSecret"): SEALED_SECRET,
    ("argoproj.io/v1alpha1", "Application"): APPLICATION,
    ("argoproj.io/v1alpha1", "AppProject"): APP_PROJECT,
}
_VALIDATORS = {k: Draft202012Validator(v) for k, v in SCHEMAS.items()}


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return str(obj.get("apiVersion", "")), str(obj.get("kind", ""))


def _semantic(obj: Mapping[str, Any]) -> list[str]:
    """Cross-field rules the operators enforce at run time."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    problems = []
    if kind == "AlertmanagerConfig" and spec.get("route"):
        names = {r.get("name") for r in spec.get("receivers") or []}
        if spec["route"].get("receiver") not in names:
            problems.append(f"spec.route.receiver {spec['route'].get('receiver')!r} is not one of spec.receivers")
    if kind == "PrometheusRule":
        names = [g.get("name") for g in spec.get("groups") or []]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"spec.groups: duplicate group names {dupes}")
    if kind == "ExternalSecret":
        keys = [d.get("secretKey") for d in spec.get("data") or []]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            problems.append(f"spec.data: duplicate secretKey {dupes}")
    return problems


def check(objects: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Violations of the documented shape of every custom resource with a schema here."""
    found = []
    for obj in objects:
        validator = _VALIDATORS.get(_key(obj))
        if validator is None:
            continue
        meta = obj.get("metadata") or {}
        messages = [f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                    for e in validator.iter_errors(obj)]
        messages += _semantic(obj)
        found += [Finding(TOOL, f"{obj['kind']}-shape", obj["kind"], meta.get("name", ""), m) for m in messages]
    return sorted(found)


def unknown_kinds(objects: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(apiVersion, kind) of the objects that are neither built-in Kubernetes kinds nor covered here."""
    return {_key(o) for o in objects if not k8s_validate.is_builtin(o)} - set(SCHEMAS)
