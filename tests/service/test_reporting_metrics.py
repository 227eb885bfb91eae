"""The shared report module on a small ledger computed by hand, and its boundaries."""

import math
from datetime import UTC, datetime
from decimal import Decimal

from eafix.contracts import TradeClosed
from eafix.reporting.breakdown import breakdown
from eafix.reporting.metrics import summarize

SQRT252 = math.sqrt(252)


def trade(n: int, symbol: str, pnl: str, pips: str, day: int, hour: int = 12) -> TradeClosed:
    return TradeClosed(
        trade_id=f"T-{n}", client_order_id=f"T-{n}", symbol=symbol, direction="LONG", lots="0.10",
        open_price="1.10000", close_price="1.10100", open_time=datetime(2026, 1, day, hour - 1, tzinfo=UTC),
        close_time=datetime(2026, 1, day, hour, tzinfo=UTC), pips=pips, pnl=pnl, account_currency="USD",
        close_reason="TP" if Decimal(pnl) > 0 else "SL")


LEDGER = [trade(1, "EURUSD", "200", "20", 5, 12), trade(2, "GBPUSD", "-100", "-10", 5, 14),
          trade(3, "EURUSD", "50", "5", 7), trade(4, "GBPUSD", "-250", "-25", 8)]
STRATEGY = {"T-1": "ema_cross", "T-2": "rsi", "T-3": "ema_cross", "T-4": "ema_cross"}


def test_summary_of_the_hand_ledger():
    s = summarize(LEDGER, Decimal("10000"))
    assert (s.trades, s.wins, s.losses, s.win_rate) == (4, 2, 2, 0.5)
    assert (s.net_pnl, s.gross_profit, s.gross_loss) == (Decimal(-100), Decimal(250), Decimal(350))
    assert s.profit_factor == 250 / 350
    assert (s.avg_win, s.avg_loss, s.expectancy) == (Decimal(125), Decimal(175), Decimal(-25))
    # equity 10200, 10100 (day 5), 10150 (day 7), 9900 (day 8): peak 10200, trough 9900
    assert s.max_drawdown == Decimal(300) and math.isclose(s.max_drawdown_pct, 300 / 10200)
    returns = [100 / 10000, 0.0, 50 / 10100, -250 / 10150]  # day 6 has no trade: 0
    mean = sum(returns) / 4
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    assert math.isclose(s.sharpe, mean / std * SQRT252)
    downside = math.sqrt((250 / 10150) ** 2 / 4)
    assert math.isclose(s.sortino, mean / downside * SQRT252)
    assert s.end_balance == Decimal(9900)


def test_breakdowns_of_the_hand_ledger():
    by_symbol = {g.key: g for g in breakdown(LEDGER, "symbol", STRATEGY)}
    eur, gbp = by_symbol["EURUSD"], by_symbol["GBPUSD"]
    assert (eur.trades, eur.wins, eur.net_pnl, eur.net_pips, eur.profit_factor) == (2, 2, 250, 25, None)
    assert (eur.avg_win, eur.avg_loss, eur.expectancy) == (Decimal(125), None, Decimal(125))
    assert (gbp.losses, gbp.win_rate, gbp.net_pnl, gbp.profit_factor, gbp.avg_loss) == (2, 0.0, -350, 0.0, 175)
    by_strategy = {g.key: g for g in breakdown(LEDGER, "strategy", STRATEGY)}
    assert (by_strategy["ema_cross"].trades, by_strategy["ema_cross"].net_pnl) == (3, 0)
    assert by_strategy["ema_cross"].profit_factor == 1.0  # 250 won, 250 lost
    assert by_strategy["rsi"].net_pnl == -100
    by_day = [(g.key, g.trades, g.net_pnl) for g in breakdown(LEDGER, "day")]
    assert by_day == [("2026-01-05", 2, 100), ("2026-01-07", 1, 50), ("2026-01-08", 1, -250)]
    assert [g.key for g in breakdown(LEDGER, "strategy")] == ["unknown"]  # no strategy map
    assert str(by_symbol["EURUSD"].net_pnl) == "250"  # polars' decimal scale is not shown


def test_no_trades():
    s = summarize([], Decimal("1000"))
    assert (s.trades, s.win_rate, s.profit_factor, s.expectancy, s.sharpe, s.sortino) == (0, None, None, None,
                                                                                          None, None)
    assert (s.max_drawdown, s.max_drawdown_pct, s.end_balance) == (0, 0.0, Decimal(1000))
    assert breakdown([], "symbol") == []


def test_all_wins_have_no_profit_factor_and_no_sortino():
    s = summarize([trade(1, "EURUSD", "100", "10", 5), trade(2, "EURUSD", "300", "30", 6)], Decimal("10000"))
    assert s.profit_factor is None and s.avg_loss is None  # gross loss 0: documented None, not inf
    assert s.sortino is None and s.sharpe is not None  # no losing day; returns 0.01 and 300/10100 differ


def test_zero_variance_has_no_sharpe():
    # +1 % on each of two days: 100 on 10000, then 101 on 10100
    s = summarize([trade(1, "EURUSD", "100", "10", 5), trade(2, "EURUSD", "101", "10", 6)], Decimal("10000"))
    assert s.sharpe is None and s.sortino is None
    assert summarize([trade(1, "EURUSD", "-5", "-1", 5)], Decimal("100")).sharpe is None  # one day


def test_a_weekend_without_trades_is_no_return():
    # Thu 8, Fri 9, Mon 12 January 2026: three returns, Saturday and Sunday are not zeros
    s = summarize([trade(1, "EURUSD", "100", "10", 8), trade(2, "EURUSD", "-50", "-5", 9),
                   trade(3, "EURUSD", "80", "8", 12)], Decimal("10000"))
    returns = [100 / 10000, -50 / 10100, 80 / 10050]
    mean = sum(returns) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert math.isclose(s.sharpe, mean / std * SQRT252)
    # a weekday without trades is a zero return: Thu 8 and Mon 12 only -> Fri 9 counts as 0
    gap = summarize([trade(1, "EURUSD", "100", "10", 8), trade(3, "EURUSD", "-80", "-8", 12)], Decimal("10000"))
    returns = [100 / 10000, 0.0, -80 / 10100]
    mean = sum(returns) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert math.isclose(gap.sharpe, mean / std * SQRT252)
