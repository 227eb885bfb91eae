"""Environment of the five pipeline services run as `eafix serve` processes against throwaway
servers: shared by the end-to-end test and bench/pipeline_latency.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

PIPELINE = ("data-ingestor", "indicator-engine", "signal-generator", "risk-manager", "execution-engine")
# with the three services around the pipeline: the end-to-end test runs all eight
AROUND = ("calendar-ingestor", "reentry-matrix-svc", "reporter")
WEEK = 7 * 86400  # ingest and quote age limits: the feeds post synthetic ticks from the past

# A strategy that fires on (almost) every closed bar, so every bar leads to an order.
FIRES_EVERY_BAR = """\
version: 1
defaults:
  min_confidence: 0.0
  duplicate_window_seconds: 0
  stop: {atr_multiple: 1.0, min_pips: 10, max_pips: 40, fallback_pips: 20}
  take_profit_ratio: 1.5
strategies:
  rsi_every_bar:
    type: rsi_mean_reversion
    oversold: 49.99
    overbought: 50
    on_cross: false
"""

# rsi_every_bar's closed trades re-enter at once at half the size (the shipped matrix knows only the
# shipped strategies); the ledger's cooldown still spaces the chains
REENTERS_AT_ONCE = """\
version: 1
matrix_version: "1.0.0"
fallback: {action: NO_REENTRY, parameter_set: PS-safe}
families:
  rsi_every_bar:
    default: {action: SAME_TRADE, size_multiplier: "0.5", delay_minutes: 0, parameter_set: PS-e2e}
"""


def base_env(*, redis_url: str, redis_password: str | None, pg_url: str, pg_user: str, pg_password: str,
             workdir: Path) -> dict[str, str]:
    """This process's environment without SERVICE_* variables, plus the Redis/PostgreSQL settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_") and k != "EAFIX_SERVICE"}
    env.update({
        "SERVICE_REDIS_URL": redis_url, "SERVICE_POSTGRES_URL": pg_url,
        "SERVICE_POSTGRES_USER": pg_user, "SERVICE_POSTGRES_PASSWORD": pg_password,
        "SERVICE_SECRETS_DIR": str(workdir / "no-secrets"), "SERVICE_LOG_LEVEL": "WARNING",
    })
    if redis_password:
        env["SERVICE_REDIS_PASSWORD"] = redis_password
    return env


def service_env(base: dict[str, str], name: str, port: int, workdir: Path, *, risk: dict,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """`base` plus one service's settings: M1 bars, the every-bar strategy, the `risk` policy, the
    paper broker; the consumer keeps its name across restarts, as a pod does."""
    env = {**base, "SERVICE_PORT": str(port), "SERVICE_CONSUMER_NAME": f"{name}-0"}
    if name == "data-ingestor":
        env["SERVICE_INGEST"] = json.dumps({"max_price_age_seconds": WEEK})
    elif name == "indicator-engine":
        env["SERVICE_TIMEFRAMES"] = '["M1"]'
    elif name == "signal-generator":
        strategies = workdir / "strategies.yaml"
        strategies.write_text(FIRES_EVERY_BAR)
        env["SERVICE_STRATEGIES_FILE"] = str(strategies)
    elif name == "risk-manager":
        env["SERVICE_RISK"] = json.dumps({"max_quote_age_seconds": WEEK, **risk})
    elif name == "execution-engine":
        env["SERVICE_BROKER"] = "paper"
    elif name == "reentry-matrix-svc":
        matrix = workdir / "matrix.yaml"
        matrix.write_text(REENTERS_AT_ONCE)
        env["SERVICE_MATRIX_FILE"] = str(matrix)
    elif name == "calendar-ingestor":
        env["SERVICE_TRACKED_SYMBOLS"] = '["EURUSD"]'
        env["SERVICE_REFRESH_SECONDS"] = "1"
    env.update(extra or {})
    return env
