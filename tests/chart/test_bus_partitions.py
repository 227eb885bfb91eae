"""`global.bus.partitions`: one partition count for every service of the bus, schema-checked, rendered
by the real Helm 4 binary into each Redis-using service's ConfigMap as SERVICE_BUS_PARTITIONS, and
read back by the services' settings into the bus configuration."""

from __future__ import annotations

import pytest

from conftest import SERVICES, TRADING
from eafix.platform.render import RenderError, render
from eafix.runtime.bus.base import SYMBOL_TOPICS
from helm_binaries import helm

VAR = "SERVICE_BUS_PARTITIONS"


@pytest.fixture(scope="module")
def helm4() -> str:
    return helm("helm4")


def _render(helm4: str, partitions) -> object:
    return render(TRADING, (), {"global": {"bus": {"partitions": partitions}}}, helm_bin=helm4)


def _config(r, svc: str) -> dict[str, str]:
    return r.one("ConfigMap", f"{svc}-config")["data"]


def _checksum(r, svc: str) -> str:
    return r.one("Deployment", svc)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_every_bus_service_gets_the_same_count_and_rolls(helm4):
    one, eight = render(TRADING, (), {}, helm_bin=helm4), _render(helm4, 8)
    on_bus = [svc for svc in SERVICES if "SERVICE_REDIS_URL" in _config(eight, svc)]
    assert {"data-ingestor", "indicator-engine", "signal-generator", "risk-manager", "execution-engine",
            "reporter", "reentry-matrix-svc", "gui-gateway"} <= set(on_bus)
    assert {_config(eight, svc)[VAR] for svc in on_bus} == {"8"}  # one count, the same text everywhere
    assert all(VAR not in _config(eight, svc) for svc in SERVICES if svc not in on_bus)  # no bus, no count
    assert all(_checksum(eight, svc) != _checksum(one, svc) for svc in on_bus)  # a change rolls them all
    assert all(VAR not in _config(one, svc) for svc in SERVICES)  # the default: one stream per topic


@pytest.mark.parametrize(("partitions", "reason"), [
    (0, "minimum"), (65, "maximum"), ("4", "want integer"), (2.5, "want integer")])
def test_a_bad_count_is_refused_naming_the_path(helm4, partitions, reason):
    with pytest.raises(RenderError) as refused:
        _render(helm4, partitions)
    text = " ".join(str(refused.value).split())
    assert "/global/bus/partitions" in text and reason in text, text


def test_an_unknown_bus_key_is_refused(helm4):
    with pytest.raises(RenderError, match="additional properties 'partition' not allowed"):
        render(TRADING, (), {"global": {"bus": {"partition": 4}}}, helm_bin=helm4)


def test_the_services_read_the_rendered_count_into_the_bus(helm4):
    from eafix.runtime.bus import RedisStreamsBus
    from eafix.runtime.service import ServiceParts, pipeline_bus
    from eafix.signal_generator.service import SETTINGS

    text = _config(_render(helm4, 16), "signal-generator")[VAR]
    settings = SETTINGS(name="signal-generator", redis_url="redis://127.0.0.1:1/0", bus_partitions=text)
    bus = pipeline_bus(settings, ServiceParts(), consume=False)
    assert isinstance(bus, RedisStreamsBus)
    assert {t: bus.config.partitions_for(t) for t in SYMBOL_TOPICS} == dict.fromkeys(SYMBOL_TOPICS, 16)
    assert bus.config.partitions_for("eafix.signals.generated") == 1  # account-wide consumers: one stream


def test_prod_partitions_as_many_as_the_signal_generator_hpa_may_run():
    from conftest import render_profile

    r = render_profile("eafix-trading:env-prod")
    hpa = r.one("HorizontalPodAutoscaler", "signal-generator")["spec"]
    assert _config(r, "signal-generator")[VAR] == str(hpa["maxReplicas"]) == "10"
    assert {_config(r, svc).get(VAR) for svc in SERVICES if "SERVICE_REDIS_URL" in _config(r, svc)} == {"10"}
    assert VAR not in _config(render_profile("eafix-trading:env-staging"), "signal-generator")
