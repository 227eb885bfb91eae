"""The `make demo` summary: quantities, budgets and the printed per-environment report."""

from decimal import Decimal

import pytest

from conftest import SERVICES, render_profile
from eafix.platform.summary import budget, describe, images, quantity


@pytest.mark.parametrize(("text", "expected"), [
    ("250m", Decimal("0.25")), ("1", Decimal(1)), ("1.5", Decimal("1.5")), ("1Gi", Decimal(1024**3)),
    ("512Mi", Decimal(512 * 1024**2)), ("512M", Decimal(512 * 10**6)), ("1e3", Decimal(1000)), (2, Decimal(2)),
])
def test_quantity(text, expected):
    assert quantity(text) == expected


@pytest.mark.parametrize("bad", ["2 cores", "512MB", "", "Mi"])
def test_quantity_rejects_malformed(bad):
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity(bad)


def test_prod_budget_by_hand():
    b = budget(render_profile("eafix-trading:env-prod"))
    # replicas x requests from the deployment docs' table; signal-generator at its HPA minimum (2)
    assert b.requests_cpu == Decimal("3.70")
    assert b.requests_memory == Decimal(5504 * 1024**2)
    assert (b.pods, b.max_pods) == (18, 26)
    # signal-generator 10 x 500m at the HPA maximum instead of 2 x 500m
    assert b.max_limits_cpu - b.limits_cpu == Decimal(4)


def test_describe_prod_compares_with_the_documented_minimum():
    r = render_profile("eafix-trading:env-prod")
    text = describe("prod", r)
    assert "documented minimum 12.00 cores / 24.00 GiB" in text
    assert "requests: 3.70 cores, 5.38 GiB" in text
    assert len(images(r)) == len(SERVICES)  # one image per service; the hooks reuse one of them


def test_prod_platform_meets_the_documented_sizing_on_limits():
    from eafix.platform.summary import (
        PROD_MINIMUM,
        PROD_RECOMMENDED,
        describe_platform,
        infra_budget,
        infra_values,
        platform_totals,
        within_documented_sizing,
    )

    trading = budget(render_profile("eafix-trading:env-prod"))
    infra = infra_budget(infra_values("prod"))
    # three Redis nodes (1.5 CPU / 4 GiB each) with a sentinel (250m / 128Mi) and an exporter
    # (200m / 128Mi) each; a PostgreSQL primary and a synchronous replica, 2 CPU / 6 GiB and an exporter each
    cpu = 3 * (Decimal("1.5") + Decimal("0.25") + Decimal("0.2")) + 2 * (Decimal(2) + Decimal("0.2"))
    memory = 3 * (4 * 1024**3 + 128 * 1024**2 + 128 * 1024**2) + 2 * (6 * 1024**3 + 128 * 1024**2)
    assert (infra.limits_cpu, infra.limits_memory) == (cpu, Decimal(memory))
    totals = platform_totals(trading, infra)
    assert totals["limits_cpu"] >= PROD_MINIMUM["cpu"] and totals["limits_memory"] >= PROD_MINIMUM["memory"]
    assert totals["max_limits_cpu"] <= PROD_RECOMMENDED["cpu"]
    assert totals["max_limits_memory"] <= PROD_RECOMMENDED["memory"]
    assert within_documented_sizing(totals)
    assert not within_documented_sizing({**totals, "limits_memory": PROD_MINIMUM["memory"] - 1})
    text = describe_platform("prod", trading, infra)
    assert "sizing  : within the documented cluster size" in text and "limits at the HPA minimum" in text


def test_infra_budget_counts_only_what_is_enabled_and_says_what_it_cannot():
    from eafix.platform.summary import infra_budget

    b = infra_budget({"redis": {"enabled": False}, "postgresql": {"enabled": True, "architecture": "standalone",
                      "primary": {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "1Gi"}}}},
                      "monitoring": {"enabled": True}})
    assert (b.pods, b.limits_cpu, b.limits_memory) == (1, Decimal(2), Decimal(1024**3))
    assert any("prometheus" in u for u in b.uncounted) and any("kube-prometheus-stack" in u for u in b.uncounted)
