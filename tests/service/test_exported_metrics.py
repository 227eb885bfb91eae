"""Every business metric the alert rules and dashboards may use (runtime.metric_names) is exported by
the service that owns it, as its /metrics shows; the few whose source does not exist yet are listed."""

import asyncio

import httpx
import pytest

from eafix import services
from eafix.runtime import metric_names as mn
from eafix.runtime.app import create_app
from eafix.runtime.service import build_parts, settings_class

PIPELINE = ["data-ingestor", "indicator-engine", "signal-generator", "risk-manager", "execution-engine",
            "reporter", "calendar-ingestor", "reentry-matrix-svc"]
# Built, but some of their declared metrics still wait for a source (listed in AWAITING_THEIR_SERVICE).
PARTLY_BUILT = ["compliance-monitor"]


def metrics_text(name: str) -> str:
    spec = services.BY_NAME[name]
    settings = settings_class(spec).defaults(spec)
    app = create_app(spec, settings, build_parts(spec, settings))

    async def get() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return (await client.get("/metrics")).text

    return asyncio.run(get())


def exported(text: str, m: mn.MetricSpec) -> bool:
    return any(f"# TYPE {series} " in text for series in (m.name, *m.series))


@pytest.mark.parametrize("name", PIPELINE + PARTLY_BUILT)
def test_service_exports_the_metrics_it_owns(name):
    text = metrics_text(name)
    missing = [m.name for m in mn.by_service(name) if not exported(text, m)]
    assert set(missing) <= AWAITING_THEIR_SERVICE
    assert mn.by_service(name), f"{name} owns no declared metric"


# Declared metrics with no exporter yet, written out so a new one cannot slip in unnoticed: the
# rules and dashboards that use them stay silent until their service lands.
AWAITING_THEIR_SERVICE = {
    # compliance-monitor: computed from the trading state, which it does not read yet
    "eafix_var_utilization_ratio", "eafix_credit_utilization_ratio", "eafix_kill_switch_last_test_timestamp_seconds",
}


def test_declared_metrics_without_an_exporter_are_exactly_the_listed_ones():
    owners = {o for m in mn.REGISTRY for o in m.owners}
    assert owners <= set(PIPELINE) | set(PARTLY_BUILT)
    texts = {name: metrics_text(name) for name in PIPELINE + PARTLY_BUILT}
    assert {m.name for m in mn.REGISTRY
            if not any(exported(texts[o], m) for o in m.owners if o in texts)} == AWAITING_THEIR_SERVICE
