"""Schema validation of built-in objects with kubernetes-validate's bundled JSON schemas.

``kubernetes_validate.validate`` re-reads and re-parses the 1.8 MB definitions file for every
object. Here each (version, kind) schema is loaded once and kept as a compiled validator, and a
document already validated for a version is not validated again, so a whole render profile (or
all of them, across nine Kubernetes versions) validates in well under a second each.

Custom resources (any API group outside Kubernetes' own, e.g. ``monitoring.coreos.com``) are
reported as "not built-in" rather than validated; a built-in API that a Kubernetes version no
longer serves (say ``autoscaling/v2beta2`` in 1.29) is invalid for that version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import jsonschema
import referencing
import referencing.jsonschema
from kubernetes_validate import utils as kv
from packaging.version import Version

from ._k8s import Finding, Obj, api_group, kind, name

TOOL = "kubernetes-validate"

# API groups Kubernetes itself serves (1.25 ... 1.37); everything else is a custom resource.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "extensions",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)

VALID, INVALID, NOT_BUILTIN = "valid", "invalid", "not built-in"


@dataclass(frozen=True)
class SchemaResult:
    kind: str
    name: str
    api_version: str
    kubernetes_version: str
    status: str  # VALID | INVALID | NOT_BUILTIN
    message: str = ""


def is_builtin(o: Obj) -> bool:
    return api_group(o) in BUILTIN_GROUPS


def supported_versions() -> list[str]:
    """Kubernetes minor versions with bundled schemas, oldest first ("1.25", ..., "1.37")."""
    return sorted({kv.major_minor(v) for v in kv.all_versions()}, key=Version)


@cache
def _schema_dir(kubernetes_version: str, strict: bool) -> str:
    wanted = Version(kv.major_minor(kubernetes_version.removeprefix("v")))
    candidates = [v for v in kv.all_versions() if Version(kv.major_minor(v)) <= wanted]
    if not candidates or wanted > Version(kv.major_minor(kv.latest_version())):
        raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version}")
    return f"v{candidates[-1]}-local" + ("-strict" if strict else "")


@cache
def _registry(schema_dir: str) -> referencing.Registry:
    definitions = kv.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir)
    return referencing.jsonschema.DRAFT202012.create_resource(definitions) @ referencing.Registry()


@cache
def _validator(schema_dir: str, object_kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
    """The compiled validator of one kind, or None when the version has no such API."""
    # rbac.authorization.k8s.io/v1 -> rbac-v1, apps/v1 -> apps-v1, v1 -> v1 (the bundle's file names)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{object_kind.lower()}-{api}.json", schema_dir
        )
    except FileNotFoundError:
        return None
    registry = referencing.jsonschema.DRAFT202012.create_resource(schema) @ _registry(schema_dir)
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _validate_doc(schema_dir: str, doc: str) -> tuple[str, str]:
    """(status, message) of one JSON-serialised object; cached, so equal documents validate once."""
    data = json.loads(doc)
    validator = _validator(schema_dir, data.get("kind", ""), data.get("apiVersion", ""))
    if validator is None:
        return INVALID, f"no schema for {data.get('apiVersion')} {data.get('kind')} (API not served)"
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return VALID, ""
    where = ".".join(str(p) for p in error.absolute_path) or "<root>"
    return INVALID, f"{where}: {error.message}"


def validate_objects(
    objects: Iterable[Obj], kubernetes_version: str, *, strict: bool = True
) -> list[SchemaResult]:
    """One result per object: valid, invalid (with the first error), or not built-in."""
    schema_dir = _schema_dir(kubernetes_version, strict)
    version = kv.major_minor(kubernetes_version.removeprefix("v"))
    results = []
    for o in objects:
        if not is_builtin(o):
            status, message = NOT_BUILTIN, f"custom resource of {o.get('apiVersion')}; not validated"
        else:
            status, message = _validate_doc(schema_dir, json.dumps(o, sort_keys=True, default=str))
        results.append(SchemaResult(kind(o), name(o), str(o.get("apiVersion", "")), version, status, message))
    return results


def check(
    objects: Iterable[Obj], kubernetes_versions: Iterable[str] | None = None, *, strict: bool = True
) -> list[Finding]:
    """Findings for the built-in objects that fail validation against any of the versions."""
    objs = list(objects)
    versions = list(kubernetes_versions) if kubernetes_versions is not None else [supported_versions()[-1]]
    return sorted(
        {
            Finding(
                TOOL,
                f"schema-{r.kubernetes_version}" + ("-strict" if strict else ""),
                r.kind,
                r.name,
                r.message,
            )
            for v in versions
            for r in validate_objects(objs, v, strict=strict)
            if r.status == INVALID
        }
    )
