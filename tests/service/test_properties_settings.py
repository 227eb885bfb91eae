"""Property tests of the settings parser every service starts with (`eafix.runtime.settings`:
`SERVICE_*` variables, JSON maps such as SERVICE_INSTRUMENTS and risk-manager's SERVICE_RISK, URLs,
ports), through `RiskSettings` (risk-manager's subclass, which adds a JSON-model setting).

Covered: any values of the variables, and a valid SERVICE_INSTRUMENTS / SERVICE_RISK document with one
character mutated, give settings or SettingsError whose message is one line naming a SERVICE_
variable (what a pod that cannot start logs first), never another exception; a valid instrument
override read from the environment is the table `Instruments.with_overrides` builds.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from unittest import mock

from hypothesis import example, given
from hypothesis import strategies as st

from eafix.instruments import DEFAULT_INSTRUMENTS
from eafix.risk_manager.service import RiskSettings
from eafix.runtime.settings import SettingsError
from service.property_strategies import fuzz_text, mutated, near_numbers

env_text = (fuzz_text | near_numbers).map(lambda t: t.replace("\x00", ""))  # the OS refuses NUL in variables
INSTRUMENTS = json.dumps({"EURUSD": {"min_lot": "0.1", "lot_step": "0.1"}, "BTCUSD": {"pip_size": "1",
                                                                                     "price_precision": 2}})
RISK = json.dumps({"risk_percent": "1.5", "max_lot": "10", "strategy_risk_multipliers": {"ema_cross": "0.5"}})
variables = st.fixed_dictionaries({}, optional={
    "SERVICE_PORT": env_text | st.integers(-10, 70000).map(str),
    "SERVICE_LOG_LEVEL": env_text | st.sampled_from(["debug", "INFO", "verbose"]),
    "SERVICE_REDIS_URL": env_text | st.sampled_from(["redis://r:6379/0", "redis://r:99999", "redis://[::1", "unix:"]),
    "SERVICE_POSTGRES_URL": env_text | st.sampled_from(["postgresql://a:5432,b:5433/db", "postgresql://a:x/db"]),
    "SERVICE_INSTRUMENTS": env_text | mutated(st.just(INSTRUMENTS)),
    "SERVICE_RISK": env_text | mutated(st.just(RISK)),
    "SERVICE_GUI_GATEWAY_URL": env_text | st.just("http://gui-gateway:8080/"),
})


def settings(env: dict[str, str]) -> RiskSettings:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    with mock.patch.dict(os.environ, {**clean, "SERVICE_SECRETS_DIR": "/nonexistent/eafix-props", **env},
                         clear=True):
        return RiskSettings(name="risk-manager")


@given(variables)
@example({"SERVICE_INSTRUMENTS": "[" * 100_000})  # too deep for the JSON parser: was a RecursionError
@example({"SERVICE_RISK": "[" * 100_000})
def test_any_environment_gives_settings_or_one_line_naming_the_variable(env) -> None:
    try:
        settings(env)
    except SettingsError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("SERVICE_"), message


def test_instrument_overrides_from_the_environment() -> None:
    table = settings({"SERVICE_INSTRUMENTS": INSTRUMENTS}).instruments
    assert table == DEFAULT_INSTRUMENTS.with_overrides(json.loads(INSTRUMENTS))
    assert table["EURUSD"].min_lot == Decimal("0.1") and table["BTCUSD"].pip_size == Decimal("1")
