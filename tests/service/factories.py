"""Events the service tests build over and over, with defaults a test overrides by keyword."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from eafix.contracts import Bar, OrderIntent, PriceTick, Signal

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday, markets open
_PERIOD = {"M1": timedelta(minutes=1), "M5": timedelta(minutes=5), "M15": timedelta(minutes=15),
           "H1": timedelta(hours=1)}


def tick(symbol: str = "EURUSD", bid: str = "1.10000", ask: str | None = None, *, at: datetime = T0,
         spread: str = "0.00010", volume: int | None = None) -> PriceTick:
    """A quote; `ask` defaults to bid + `spread`."""
    ask_price = Decimal(ask) if ask is not None else Decimal(bid) + Decimal(spread)
    return PriceTick(symbol=symbol, ts=at, bid=Decimal(bid), ask=ask_price, volume=volume)


def intent(n: int = 1, *, symbol: str = "EURUSD", direction: str = "LONG", lots: str = "1.00", sl: str = "20",
           tp: str = "40", entry: str = "1.10000", key: str | None = None, client_order_id: str | None = None,
           signal_id: str | None = None, account: str = "USD", balance: str = "10000.00",
           risk_percent: str = "2.0") -> OrderIntent:
    """An approved order; the client order id is `O-20250106T120000Z-<n>` unless given, and is also
    the idempotency key unless `key` is given."""
    cid = client_order_id or f"O-20250106T120000Z-{n:06d}"
    return OrderIntent(client_order_id=cid, idempotency_key=key or cid, signal_id=signal_id or f"SIG-{n}",
                       symbol=symbol, direction=direction, lots=Decimal(lots), sl_pips=Decimal(sl),
                       tp_pips=Decimal(tp), entry_price=Decimal(entry), risk_percent=Decimal(risk_percent),
                       account_balance=Decimal(balance), account_currency=account)


def signal(signal_id: str = "SIG-1", *, symbol: str = "EURUSD", direction: str = "LONG", sl: str = "20",
           tp: str | None = "40", entry: str = "1.10010", strategy: str = "ema_cross", timeframe: str = "H1",
           confidence: float = 0.8, at: datetime = T0) -> Signal:
    return Signal(signal_id=signal_id, symbol=symbol, timeframe=timeframe, strategy=strategy, direction=direction,
                  confidence=confidence, source_indicators={"ema_20": 1.1}, entry_price=Decimal(entry),
                  sl_pips=Decimal(sl), tp_pips=Decimal(tp) if tp is not None else None, ts=at)


def bar(o: str, h: str, low: str, c: str, *, symbol: str = "EURUSD", timeframe: str = "M1",
        opened: datetime = T0, volume: int = 0) -> Bar:
    return Bar(symbol=symbol, timeframe=timeframe, ts_open=opened, ts_close=opened + _PERIOD[timeframe],
               open=Decimal(o), high=Decimal(h), low=Decimal(low), close=Decimal(c), volume=volume)
