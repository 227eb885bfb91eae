"""indicator-engine and signal-generator get the same strategies document, so the engine computes the
indicators the strategies read: the rendered ConfigMaps of both carry it, each service's own loader
reads the same indicator set from them, and values that give the two different documents fail."""

from __future__ import annotations

import pytest

from eafix.contracts.strategies import load_strategies_text
from eafix.platform.render import RenderError

STRATEGIES = """\
version: 1
strategies:
  sma_cross:
    type: ma_crossover
    fast: sma(10)
    slow: sma(20)
  fade:
    type: rsi_mean_reversion
    rsi: rsi(7)
"""


def _files(r, service: str) -> dict[str, str]:
    return r.one("ConfigMap", f"{service}-files")["data"]


def test_both_services_get_the_same_document_and_indicator_set(render_with):
    r = render_with({"indicator-engine": {"configFiles": {"strategiesFile": STRATEGIES}},
                     "signal-generator": {"configFiles": {"strategiesFile": STRATEGIES}}})
    engine, signals = _files(r, "indicator-engine"), _files(r, "signal-generator")
    assert engine == signals == {"SERVICE_STRATEGIES_FILE": STRATEGIES}
    for service in ("indicator-engine", "signal-generator"):
        config = r.one("ConfigMap", f"{service}-config")["data"]
        assert config["SERVICE_STRATEGIES_FILE"] == "/etc/eafix/files/SERVICE_STRATEGIES_FILE"
    declared = {s.key for s in load_strategies_text(engine["SERVICE_STRATEGIES_FILE"]).indicators()}
    assert {"sma(10)", "sma(20)", "rsi(7)"} <= declared


@pytest.mark.parametrize("values", [
    {"signal-generator": {"configFiles": {"strategiesFile": STRATEGIES}}},
    {"indicator-engine": {"configFiles": {"strategiesFile": STRATEGIES}},
     "signal-generator": {"configFiles": {"strategiesFile": STRATEGIES.replace("sma(10)", "sma(12)")}}},
    {"indicator-engine": {"config": {"strategiesFile": "/x.yaml"}}},
])
def test_different_strategies_for_the_two_fail_the_render(render_with, values):
    with pytest.raises(RenderError) as err:
        render_with(values)
    assert "indicator-engine and signal-generator: give both the same strategies" in str(err.value)


def test_one_service_disabled_needs_no_agreement(render_with):
    r = render_with({"indicator-engine": {"enabled": False},
                     "signal-generator": {"configFiles": {"strategiesFile": STRATEGIES}}})
    assert _files(r, "signal-generator") == {"SERVICE_STRATEGIES_FILE": STRATEGIES}
