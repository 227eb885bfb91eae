"""Per-environment summary of the rendered platform: objects, images and the resource budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eafix.platform.policy.quantity import parse as parse_quantity
from eafix.platform.profiles import ENVIRONMENTS, env_overlay, profiles
from eafix.platform.render import Rendered, load_values, render

# The deployment docs' cluster sizing for production (whole cluster, data stores included).
PROD_MINIMUM = {"cpu": Decimal(12), "memory": Decimal(24 * 1024**3)}
PROD_RECOMMENDED = {"cpu": Decimal(24), "memory": Decimal(48 * 1024**3)}



def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity as a number (cores or bytes)."""
    parsed = parse_quantity(value)
    if parsed is None:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return parsed


@dataclass
class Budget:
    """Sums of requests and limits over the pods a profile runs (HPA at its minimum and maximum)."""

    requests_cpu: Decimal = Decimal(0)
    requests_memory: Decimal = Decimal(0)
    limits_cpu: Decimal = Decimal(0)
    limits_memory: Decimal = Decimal(0)
    max_limits_cpu: Decimal = Decimal(0)
    max_limits_memory: Decimal = Decimal(0)
    pods: int = 0
    max_pods: int = 0


def budget(r: Rendered) -> Budget:
    hpa = {h["spec"]["scaleTargetRef"]["name"]: h["spec"] for h in r.select(kind="HorizontalPodAutoscaler")}
    b = Budget()
    for d in r.select(kind="Deployment"):
        name = d["metadata"]["name"]
        low = hpa[name]["minReplicas"] if name in hpa else d["spec"].get("replicas", 1)
        high = hpa[name]["maxReplicas"] if name in hpa else low
        b.pods += low
        b.max_pods += high
        for c in d["spec"]["template"]["spec"]["containers"]:
            res = c.get("resources", {})
            req, lim = res.get("requests", {}), res.get("limits", {})
            b.requests_cpu += low * quantity(req.get("cpu", 0))
            b.requests_memory += low * quantity(req.get("memory", 0))
            b.limits_cpu += low * quantity(lim.get("cpu", 0))
            b.limits_memory += low * quantity(lim.get("memory", 0))
            b.max_limits_cpu += high * quantity(lim.get("cpu", 0))
            b.max_limits_memory += high * quantity(lim.get("memory", 0))
    return b


def images(r: Rendered) -> list[str]:
    found = set()
    for o in r.objects:
        spec = o.get("spec", {})
        spec = spec.get("template", {}).get("spec", spec)
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            found.add(c["image"])
    return sorted(found)


def _cores(v: Decimal) -> str:
    return f"{v.quantize(Decimal('0.01'))} cores"


def _gib(v: Decimal) -> str:
    return f"{(v / 1024**3).quantize(Decimal('0.01'))} GiB"


def describe(env: str, r: Rendered) -> str:
    b = budget(r)
    kinds = ", ".join(f"{k} {n}" for k, n in r.kinds().items())
    lines = [
        f"== {env}: eafix-trading ({len(r.objects)} objects)",
        f"   objects : {kinds}",
        f"   pods    : {b.pods} (up to {b.max_pods} with autoscaling)",
        f"   requests: {_cores(b.requests_cpu)}, {_gib(b.requests_memory)}",
        f"   limits  : {_cores(b.limits_cpu)}, {_gib(b.limits_memory)}"
        f" (at HPA maximum {_cores(b.max_limits_cpu)}, {_gib(b.max_limits_memory)})",
        "   images  : " + ("\n             ".join(images(r))),
    ]
    if env == "prod":
        lines.append(
            f"   cluster : documented minimum {_cores(PROD_MINIMUM['cpu'])} / {_gib(PROD_MINIMUM['memory'])},"
            f" recommended {_cores(PROD_RECOMMENDED['cpu'])} / {_gib(PROD_RECOMMENDED['memory'])};"
            f" the trading services' limits use {b.limits_cpu / PROD_MINIMUM['cpu']:.0%} of the minimum's CPU"
            f" and {b.limits_memory / PROD_MINIMUM['memory']:.0%} of its memory"
            " (the rest is for Redis, PostgreSQL and monitoring)"
        )
    return "\n".join(lines)


# --- eafix-infra: the data stores are Bitnami subcharts that do not render offline --------------

@dataclass
class InfraBudget:
    """Requests/limits of the infra subcharts, summed from the values eafix-infra hands them."""

    requests_cpu: Decimal = Decimal(0)
    requests_memory: Decimal = Decimal(0)
    limits_cpu: Decimal = Decimal(0)
    limits_memory: Decimal = Decimal(0)
    pods: int = 0
    parts: list[str] = field(default_factory=list)  # "redis master x1: 1 CPU / 2 GiB ..." lines
    uncounted: list[str] = field(default_factory=list)  # enabled parts without resources in the values


def _add(b: InfraBudget, label: str, replicas: int, resources: Mapping[str, Any] | None) -> None:
    if not resources or not resources.get("limits"):
        b.uncounted.append(f"{label} (no resources in the values; the subchart's resourcesPreset applies)")
        return
    req, lim = resources.get("requests", {}), resources["limits"]
    b.requests_cpu += replicas * quantity(req.get("cpu", 0))
    b.requests_memory += replicas * quantity(req.get("memory", 0))
    b.limits_cpu += replicas * quantity(lim.get("cpu", 0))
    b.limits_memory += replicas * quantity(lim.get("memory", 0))
    b.parts.append(f"{label} x{replicas}: limits {_cores(quantity(lim.get('cpu', 0)))},"
                   f" {_gib(quantity(lim.get('memory', 0)))} each")


def _add_redis(b: InfraBudget, redis: Mapping[str, Any]) -> None:
    replica = redis.get("replica") or {}
    sentinel = redis.get("sentinel") or {}
    replicas = int(replica.get("replicaCount", 3)) if redis.get("architecture") == "replication" else 0
    if replicas and sentinel.get("enabled"):
        # Bitnami with Sentinel: one StatefulSet of `replica.*` nodes, a sentinel container in each
        b.pods += replicas
        _add(b, "redis node", replicas, replica.get("resources"))
        _add(b, "redis sentinel", replicas, sentinel.get("resources"))
        exporters = replicas
    else:
        b.pods += 1 + replicas
        _add(b, "redis master", 1, (redis.get("master") or {}).get("resources"))
        if replicas:
            _add(b, "redis replica", replicas, replica.get("resources"))
        exporters = 1 + replicas
    if (redis.get("metrics") or {}).get("enabled"):
        _add(b, "redis exporter", exporters, redis["metrics"].get("resources"))


def infra_budget(values: Mapping[str, Any]) -> InfraBudget:
    """Steady-state pods of the Redis/PostgreSQL/monitoring subcharts from eafix-infra's merged values
    (backup CronJobs run for minutes a night and are not counted)."""
    b = InfraBudget()
    redis = values.get("redis") or {}
    if redis.get("enabled"):
        _add_redis(b, redis)
    pg = values.get("postgresql") or {}
    if pg.get("enabled"):
        b.pods += 1
        _add(b, "postgresql primary", 1, (pg.get("primary") or {}).get("resources"))
        replication = pg.get("architecture") == "replication"
        reads = int((pg.get("readReplicas") or {}).get("replicaCount", 1)) if replication else 0
        if reads:
            b.pods += reads
            _add(b, "postgresql read replica", reads, (pg.get("readReplicas") or {}).get("resources"))
        if (pg.get("metrics") or {}).get("enabled"):
            _add(b, "postgresql exporter", 1 + reads, pg["metrics"].get("resources"))
    if (values.get("monitoring") or {}).get("enabled"):
        spec = ((values.get("kube-prometheus-stack") or {}).get("prometheus") or {}).get("prometheusSpec") or {}
        _add(b, "prometheus", 1, spec.get("resources"))
        b.uncounted.append("the other kube-prometheus-stack components (operator, Alertmanager, Grafana, exporters)")
    return b


def infra_values(env: str) -> dict[str, Any]:
    """eafix-infra's chart defaults merged with values/<env>/eafix-infra.yaml."""
    chart = profiles("eafix-infra")[0].chart_dir
    return load_values([chart / "values.yaml", env_overlay("eafix-infra", env)])


def describe_infra(env: str, r: Rendered, values: Mapping[str, Any]) -> str:
    b = infra_budget(values)
    kinds = ", ".join(f"{k} {n}" for k, n in r.kinds().items()) or "none"
    lines = [
        f"== {env}: eafix-infra ({len(r.objects)} objects of its own templates)",
        f"   objects : {kinds}",
        f"   secrets : provider {values['secrets']['provider']}",
        "   stores  : Bitnami subcharts (fetched by `helm dependency build`, not rendered here);"
        " summed from the values eafix-infra passes them:",
        *(f"             {p}" for p in b.parts),
        f"   requests: {_cores(b.requests_cpu)}, {_gib(b.requests_memory)}",
        f"   limits  : {_cores(b.limits_cpu)}, {_gib(b.limits_memory)}",
    ]
    lines += [f"   not counted: {u}" for u in b.uncounted]
    return "\n".join(lines)


def platform_totals(trading: Budget, infra: InfraBudget) -> dict[str, Decimal]:
    """Trading services at their HPA minimum plus the infra subcharts."""
    return {
        "requests_cpu": trading.requests_cpu + infra.requests_cpu,
        "requests_memory": trading.requests_memory + infra.requests_memory,
        "limits_cpu": trading.limits_cpu + infra.limits_cpu,
        "limits_memory": trading.limits_memory + infra.limits_memory,
        "max_limits_cpu": trading.max_limits_cpu + infra.limits_cpu,
        "max_limits_memory": trading.max_limits_memory + infra.limits_memory,
    }


def within_documented_sizing(totals: Mapping[str, Decimal]) -> bool:
    """Limits at the HPA minimum reach the documented minimum; limits at the HPA maximum stay within
    the recommended size."""
    return (totals["limits_cpu"] >= PROD_MINIMUM["cpu"] and totals["limits_memory"] >= PROD_MINIMUM["memory"]
            and totals["max_limits_cpu"] <= PROD_RECOMMENDED["cpu"]
            and totals["max_limits_memory"] <= PROD_RECOMMENDED["memory"])


def describe_platform(env: str, trading: Budget, infra: InfraBudget) -> str:
    t = platform_totals(trading, infra)
    lines = [
        f"== {env}: platform total (eafix-trading + eafix-infra data stores)",
        f"   requests: {_cores(t['requests_cpu'])}, {_gib(t['requests_memory'])}",
        f"   limits  : {_cores(t['limits_cpu'])}, {_gib(t['limits_memory'])}"
        f" (at HPA maximum {_cores(t['max_limits_cpu'])}, {_gib(t['max_limits_memory'])})",
    ]
    if env == "prod":
        verdict = "within" if within_documented_sizing(t) else "OUTSIDE"
        lines.append(
            f"   sizing  : {verdict} the documented cluster size — limits at the HPA minimum"
            f" ({_cores(t['limits_cpu'])}, {_gib(t['limits_memory'])}) >= minimum"
            f" {_cores(PROD_MINIMUM['cpu'])} / {_gib(PROD_MINIMUM['memory'])}, limits at the HPA maximum"
            f" ({_cores(t['max_limits_cpu'])}, {_gib(t['max_limits_memory'])}) <= recommended"
            f" {_cores(PROD_RECOMMENDED['cpu'])} / {_gib(PROD_RECOMMENDED['memory'])}")
    return "\n".join(lines)


def rendered_environments() -> dict[str, Rendered]:
    chart = profiles("eafix-trading")[0].chart_dir
    return {env: render(chart, [env_overlay("eafix-trading", env)]) for env in ENVIRONMENTS}
