"""Per-environment summary of the rendered platform: objects, images and the resource budget."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from eafix.platform.policy.quantity import parse as parse_quantity
from eafix.platform.profiles import ENVIRONMENTS, env_overlay, profiles
from eafix.platform.render import Rendered, render

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


def rendered_environments() -> dict[str, Rendered]:
    chart = profiles("eafix-trading")[0].chart_dir
    return {env: render(chart, [env_overlay("eafix-trading", env)]) for env in ENVIRONMENTS}
