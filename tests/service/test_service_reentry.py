"""reentry-matrix-svc built from its environment on a real Redis and a migrated PostgreSQL: a closed trade
becomes a ReentryDecision, an approved re-entry is published as a Signal 1.1 when due, and a re-entry
still scheduled at a restart is restored from PostgreSQL with its due time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix.contracts import OrderIntent, TradeClosed
from service.factories import signal, tick
from service.harness import ServiceEnv, eventually, fresh_env, publish, read, started

pytestmark = pytest.mark.anyio

# ema_cross: a target hit (O5: +1.0 < R <= +2.0) re-enters at 0.8 of the size after DELAY minutes
MATRIX = """version: 1
matrix_version: "2.1.0"
fallback: {{action: NO_REENTRY, parameter_set: PS-safe}}
families:
  ema_cross:
    default: {{action: NO_REENTRY, parameter_set: PS-none}}
    cells:
      - {{generation: O, outcome: O5, action: SAME_TRADE, size_multiplier: "0.8", delay_minutes: {delay},
         parameter_set: PS-go}}
"""


@pytest.fixture
async def env(monkeypatch, redis_server, migrated_db, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path, postgres=migrated_db)


def matrix_file(env: ServiceEnv, delay: int) -> str:
    path = env.tmp_path / f"matrix-{delay}.yaml"
    path.write_text(MATRIX.format(delay=delay))
    return str(path)


async def open_and_close(env: ServiceEnv, app, n: str, symbol: str) -> TradeClosed:
    """A LONG ema_cross trade of 1.20 lots with a 20-pip stop closed 30 pips up (R = 1.5, O5) after 40 min.
    Each test trades a symbol of its own: the ledger's cooldown is per symbol and the database is shared."""
    now = datetime.now(UTC).replace(microsecond=0)
    opened = signal(f"SIG-{n}", symbol=symbol, strategy="ema_cross", timeframe="H1", at=now)
    await publish(env, opened, producer="signal-generator")
    intent = OrderIntent(client_order_id=f"O-{n}", idempotency_key=f"O-{n}", signal_id=f"SIG-{n}", symbol=symbol,
                         direction="LONG", lots=Decimal("1.20"), sl_pips=Decimal(20), tp_pips=Decimal(40),
                         entry_price=Decimal("1.10010"), risk_percent=Decimal(2), account_balance=Decimal(10000),
                         account_currency="USD")
    await publish(env, intent, producer="risk-manager")
    await publish(env, tick(symbol, "1.10300", at=now), producer="data-ingestor")
    engine = lambda: app.state.parts.state["stage"].engine  # noqa: E731
    # separate streams: wait until the order and its signal are known, as they are long before a close
    await eventually(lambda: engine().order(f"O-{n}") and engine().origin(f"SIG-{n}"), "the order and its signal")
    trade = TradeClosed(trade_id=f"T-{n}", client_order_id=f"O-{n}", symbol=symbol, direction="LONG",
                        lots=Decimal("1.20"), open_price=Decimal("1.10010"), close_price=Decimal("1.10310"),
                        open_time=now - timedelta(minutes=40), close_time=now, pips=Decimal(30), pnl=Decimal(360),
                        account_currency="USD", close_reason="TP")
    await publish(env, trade, producer="execution-engine")
    return trade


async def decision_of(env: ServiceEnv, trade_id: str):
    return [e for e in await read(env, "eafix.reentry.decisions") if e.data.trade_id == trade_id]


async def test_a_closed_trade_is_decided_and_its_reentry_published_as_a_signal(env):
    n = uuid.uuid4().hex[:8]
    app = env.app("reentry-matrix-svc", MATRIX_FILE=matrix_file(env, 0))
    async with started(app) as client:
        trade = await open_and_close(env, app, n, "EURUSD")
        (decision,) = await eventually(lambda: decision_of(env, trade.trade_id), "the decision")
        signals = await eventually(lambda: _reentry_signals(env, n), "the re-entry signal")
        chain = (await client.get(f"/api/v1/reentry/chains/T-{n}")).json()
        matrix = (await client.get("/api/v1/reentry/matrix")).json()
        metrics = (await client.get("/metrics")).text
    d = decision.data
    # the trade closed was an original (O): the decision counted by its action and that generation
    assert 'eafix_reentry_decisions_total{action="SAME_TRADE",generation="O"} 1.0' in metrics
    assert (d.outcome, d.duration, d.proximity, d.action, d.tier) == ("O5", "LONG", "NONE", "SAME_TRADE", 2)
    assert d.approved and d.refusal is None and d.parameter_set == "PS-go@2.1.0"
    assert d.size_multiplier == Decimal("0.8") and d.reentry_signal_id == f"RE-T-{n}"
    (re,) = signals
    link = re.data.reentry
    assert (re.data.strategy, re.data.direction, re.data.sl_pips, re.data.tp_pips) == ("ema_cross", "LONG", 20, 40)
    assert re.data.entry_price == Decimal("1.10310")  # the ask of the latest tick
    assert (link.generation, link.parent_trade_id, link.original_trade_id) == ("R1", f"T-{n}", f"T-{n}")
    assert (link.size_multiplier, link.max_lots) == (Decimal("0.8"), Decimal("1.20"))
    assert re.schema_version == "1.2"  # Signal 1.1 added reentry, 1.2 reverse (not set here)
    assert chain["original_trade_id"] == f"T-{n}" and [x["decision_id"] for x in chain["decisions"]] == [f"RD-T-{n}"]
    assert matrix["matrix_version"] == "2.1.0"


async def _reentry_signals(env: ServiceEnv, n: str) -> list:
    return [e for e in await read(env, "eafix.signals.generated") if e.data.signal_id == f"RE-T-{n}"]


async def test_a_scheduled_reentry_survives_a_restart(env):
    n = uuid.uuid4().hex[:8]
    settings = {"MATRIX_FILE": matrix_file(env, 30)}
    first = env.app("reentry-matrix-svc", **settings)
    async with started(first):
        trade = await open_and_close(env, first, n, "GBPUSD")
        (decision,) = await eventually(lambda: decision_of(env, trade.trade_id), "the decision")
    assert decision.data.due_at == decision.data.decided_at + timedelta(minutes=30)
    assert await _reentry_signals(env, n) == []  # not due yet

    again = env.app("reentry-matrix-svc", **settings)  # a new process: the schedule comes from PostgreSQL
    async with started(again) as client:
        stage = again.state.parts.state["stage"]
        pending = [r for r in stage.engine.pending() if r.signal_id == f"RE-T-{n}"]
        assert [r.due_at for r in pending] == [decision.data.due_at]
        # a redelivered trade gets the stored decision, not a second re-entry
        assert stage.engine.verdict_for(f"T-{n}").decision_id == f"RD-T-{n}"
        assert stage.engine.on_clock(decision.data.due_at - timedelta(seconds=1)) == []
        (due,) = [r for r, _ in stage.engine.on_clock(decision.data.due_at) if r.signal_id == f"RE-T-{n}"]
        assert due.max_lots == Decimal("1.20")
        response = await client.get(f"/api/v1/reentry/chains/RE-none-{n}")
    assert response.status_code == 404


async def test_what_if_names_the_tier_and_refuses_bad_input(env):
    async with started(env.app("reentry-matrix-svc", MATRIX_FILE=matrix_file(env, 0))) as client:
        body = {"symbol": "EURUSD", "strategy": "rsi_reversion", "direction": "SHORT", "lots": "1.00",
                "close_price": "1.10000", "pips": "-25", "sl_pips": "20", "open_time": "2025-03-10T12:00:00Z",
                "close_time": "2025-03-10T12:03:00Z"}
        unknown_family = (await client.post("/api/v1/reentry/decide", json=body)).json()
        bad = await client.post("/api/v1/reentry/decide", json=dict(body, close_time="2025-03-10T11:00:00Z"))
        no_symbol = await client.post("/api/v1/reentry/decide", json=dict(body, symbol="EUR"))
    # a family the matrix does not name: the global fallback (tier 4), R = -1.25 (O1), 3 min (FLASH)
    assert (unknown_family["tier"], unknown_family["action"]) == (4, "NO_REENTRY")
    assert (unknown_family["outcome"], unknown_family["duration"]) == ("O1", "FLASH")
    assert bad.status_code == 422 and "close_time is before open_time" in bad.text
    assert no_symbol.status_code == 422 and no_symbol.json()["detail"][0]["loc"][-1] == "symbol"


async def test_a_broken_matrix_file_stops_the_start_naming_the_problem(env, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text('version: 1\nmatrix_version: "1.0.0"\nfallback: {action: SAME_TRADE, parameter_set: PS-x}\n')
    with pytest.raises(Exception) as err:
        env.app("reentry-matrix-svc", MATRIX_FILE=str(path))
    assert "SERVICE_MATRIX_FILE" in str(err.value) and "fallback" in str(err.value)
