"""Every business metric the alert rules and dashboards may use (runtime.metric_names) is exported by
the service that owns it, as its /metrics shows; metrics of services not built yet are listed."""

import asyncio

import httpx
import pytest

from eafix import services
from eafix.runtime import metric_names as mn
from eafix.runtime.app import create_app
from eafix.runtime.service import build_parts, settings_class

PIPELINE = ["data-ingestor", "indicator-engine", "signal-generator", "risk-manager", "execution-engine"]
# Services that are health/metrics skeletons so far: their declared metrics have no exporter yet.
NOT_BUILT = {"calendar-ingestor", "reentry-matrix-svc", "reporter", "compliance-monitor", "gui-gateway"}


def metrics_text(name: str) -> str:
    spec = services.BY_NAME[name]
    settings = settings_class(spec).defaults(spec)
    app = create_app(spec, settings, build_parts(spec, settings))

    async def get() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return (await client.get("/metrics")).text

    return asyncio.run(get())


@pytest.mark.parametrize("name", PIPELINE)
def test_service_exports_the_metrics_it_owns(name):
    text = metrics_text(name)
    missing = [m.name for m in mn.by_service(name)
               if not any(f"# TYPE {series} " in text for series in (m.name, *m.series))]
    assert missing == []
    assert mn.by_service(name), f"{name} owns no declared metric"


def test_every_declared_metric_has_an_owner_that_is_built_or_listed_as_pending():
    owners = {o for m in mn.REGISTRY for o in m.owners}
    assert owners <= set(PIPELINE) | NOT_BUILT
    pending = sorted(m.name for m in mn.REGISTRY if not set(m.owners) & set(PIPELINE))
    # the exporters still to write (calendar, re-entry, reporter, compliance): the rules that use
    # these stay silent until their service lands
    assert pending == sorted(m.name for m in mn.REGISTRY if set(m.owners) <= NOT_BUILT)
    assert "eafix_var_utilization_ratio" in pending and "eafix_ticks_received" not in pending
