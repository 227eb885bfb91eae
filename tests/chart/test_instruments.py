"""`global.instruments`: the one instrument table, schema-checked, handed to every service as
SERVICE_INSTRUMENTS (compact JSON), and read back by the table the services build from it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from conftest import SERVICES
from eafix.instruments import DEFAULT_INSTRUMENTS
from eafix.platform.render import RenderError

TABLE = {
    "XAUUSD": {"pip_size": "0.01", "contract_size": 100},  # a broker's gold: fields of a built-in symbol
    "USDTRY": {"base": "USD", "quote": "TRY", "pip_size": 0.0001, "contract_size": "100000",
               "min_lot": "0.01", "lot_step": "0.01", "max_lot": 20, "price_precision": 5},  # a new symbol
}


def _config(r, svc: str) -> dict[str, str]:
    return r.one("ConfigMap", f"{svc}-config")["data"]


def _checksum(r, svc: str) -> str:
    return r.one("Deployment", svc)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_the_built_in_table_needs_no_variable(defaults):
    assert all("SERVICE_INSTRUMENTS" not in _config(defaults, svc) for svc in SERVICES)


def test_every_service_gets_the_same_table_and_rolls_when_it_changes(defaults, render_with):
    r = render_with({"global": {"instruments": TABLE}})
    texts = {_config(r, svc)["SERVICE_INSTRUMENTS"] for svc in SERVICES}
    (text,) = texts  # one table, the same bytes in every service
    assert " " not in text and "\n" not in text  # compact
    assert json.loads(text) == TABLE  # keys as given; decimal strings stay strings, numbers numbers
    assert all(_checksum(r, svc) != _checksum(defaults, svc) for svc in SERVICES)


def test_the_services_read_the_rendered_table(render_with):
    text = _config(render_with({"global": {"instruments": TABLE}}), "risk-manager")["SERVICE_INSTRUMENTS"]
    table = DEFAULT_INSTRUMENTS.with_overrides(json.loads(text))
    gold, lira = table["XAUUSD"], table["USDTRY"]
    assert (gold.pip_size, gold.contract_size) == (Decimal("0.01"), Decimal(100))
    assert gold.price_precision == DEFAULT_INSTRUMENTS["XAUUSD"].price_precision  # untouched fields stay
    assert (lira.quote, lira.pip_size, lira.max_lot, lira.price_precision) == ("TRY", Decimal("0.0001"),
                                                                               Decimal(20), 5)


@pytest.mark.parametrize(("table", "where", "reason"), [
    ({"eurusd": {"pip_size": "0.0001"}}, "/global/instruments", "additional properties 'eurusd' not allowed"),
    ({"EURUSD1": {}}, "/global/instruments", "additional properties 'EURUSD1' not allowed"),
    ({"EURUSD": {"pip_size": -0.0001}}, "/global/instruments/EURUSD/pip_size", "exclusiveMinimum"),
    ({"EURUSD": {"pip_size": 0}}, "/global/instruments/EURUSD/pip_size", "exclusiveMinimum"),
    ({"EURUSD": {"pip_size": "-0.0001"}}, "/global/instruments/EURUSD/pip_size", "does not match pattern"),
    ({"EURUSD": {"contract_size": "0.0"}}, "/global/instruments/EURUSD/contract_size", "does not match pattern"),
    ({"EURUSD": {"min_lot": "1e-2"}}, "/global/instruments/EURUSD/min_lot", "does not match pattern"),
    ({"EURUSD": {"pipSize": "0.0001"}}, "/global/instruments/EURUSD", "additional properties 'pipSize' not allowed"),
    ({"EURUSD": {"price_precision": 9}}, "/global/instruments/EURUSD/price_precision", "maximum: got 9, want 8"),
    ({"EURUSD": {"price_precision": 2.5}}, "/global/instruments/EURUSD/price_precision", "want integer"),
    ({"EURUSD": {"quote": "usd"}}, "/global/instruments/EURUSD/quote", "does not match pattern"),
    ({"EURUSD": "0.0001"}, "/global/instruments/EURUSD", "want object"),
])
def test_a_bad_entry_is_refused_naming_its_path(render_with, table, where, reason):
    with pytest.raises(RenderError) as err:
        render_with({"global": {"instruments": table}})
    lines = [line.strip(" -") for line in str(err.value).splitlines()]
    assert any(line.startswith(f"at '{where}'") and reason in line for line in lines), str(err.value)


def test_no_service_keeps_its_own_instrument_settings(render_with):
    with pytest.raises(RenderError) as err:
        render_with({"risk-manager": {"config": {"instruments": {"EURUSD": {"pip_size": "0.0001"}}}}})
    assert "risk-manager.config.instruments: instruments are not a service setting" in str(err.value)
    assert "global.instruments" in str(err.value)
