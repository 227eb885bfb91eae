"""The shared report module on a small ledger computed by hand, and its boundaries."""

import math
from datetime import UTC, datetime
from decimal import Decimal

from eafix.contracts import TradeClosed
from eafix.reporting.breakdown import breakdown
from eafix.reporting.drawdown import drawdowns
from eafix.reporting.metrics import exposure_time, monthly_returns, open_lots, summarize

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


def test_the_peers_statistics_of_the_hand_ledger():
    s = summarize(LEDGER, Decimal("10000"))
    # span: first open Mon 5 Jan 11:00 .. last close Thu 8 Jan 12:00 = 3 days 1 hour = 73 hours
    assert (s.start, s.end) == (datetime(2026, 1, 5, 11, tzinfo=UTC), datetime(2026, 1, 8, 12, tzinfo=UTC))
    # each trade is open one hour, none overlap: 4 hours in the market of 73
    assert math.isclose(s.exposure_time, 4 / 73)
    assert s.return_pct == -100 / 10000
    # CAGR: 9900 / 10000 over 73 hours = 73 / (365.25 * 24) years
    years = 73 / (365.25 * 24)
    assert math.isclose(s.cagr, 0.99 ** (1 / years) - 1)
    # equity 10000 (5 Jan 11:00), 10200 (5 Jan 12:00, the peak), 10100, 10150, 9900 (8 Jan 12:00): one
    # drawdown period, 300 deep, from the peak to the end of the curve (not recovered) = 3 days
    assert (s.avg_drawdown, s.max_drawdown_days, s.avg_drawdown_days) == (Decimal(300), 3.0, 3.0)
    assert math.isclose(s.avg_drawdown_pct, 300 / 10200)
    assert (s.max_drawdown_start, s.max_drawdown_end) == (datetime(2026, 1, 5, 12, tzinfo=UTC), s.end)
    assert math.isclose(s.calmar, s.cagr / (300 / 10200))
    returns = [100 / 10000, 0.0, 50 / 10100, -250 / 10150]
    mean = sum(returns) / 4
    assert math.isclose(s.volatility, math.sqrt(sum((r - mean) ** 2 for r in returns) / 3) * SQRT252)
    assert (s.best_trade, s.worst_trade, s.avg_trade_pips) == (Decimal(200), Decimal(-250), Decimal("-2.5"))
    # SQN: pnl 200, -100, 50, -250: mean -25, squared deviations 225², 75², 75², 225² = 112500,
    # sample variance 112500 / 3 = 37500; sqrt(4) * -25 / sqrt(37500) = -0.2582
    assert math.isclose(s.sqn, 2 * -25 / math.sqrt(37500))
    assert math.isclose(s.sqn, -0.2582, abs_tol=1e-4)


def test_drawdown_periods_recovered_and_averaged():
    # 1000 -> 1100 (5 Jan, peak) -> 1050 -> 1150 (7 Jan, recovered: 50 deep, 2 days) -> 950
    # -> 1250 (Mon 12 Jan, recovered: 200 deep, 7 Jan .. 12 Jan = 5 days)
    ledger = [trade(1, "EURUSD", "100", "10", 5), trade(2, "EURUSD", "-50", "-5", 6),
              trade(3, "EURUSD", "100", "10", 7), trade(4, "EURUSD", "-200", "-20", 8),
              trade(5, "EURUSD", "300", "30", 12)]
    s = summarize(ledger, Decimal("1000"))
    assert (s.max_drawdown, s.avg_drawdown) == (Decimal(200), Decimal(125))
    assert math.isclose(s.max_drawdown_pct, 200 / 1150)
    assert math.isclose(s.avg_drawdown_pct, (50 / 1100 + 200 / 1150) / 2)
    assert (s.max_drawdown_days, s.avg_drawdown_days) == (5.0, 3.5)
    assert (s.max_drawdown_start, s.max_drawdown_end) == (datetime(2026, 1, 7, 12, tzinfo=UTC),
                                                          datetime(2026, 1, 12, 12, tzinfo=UTC))
    assert [p.recovered for p in drawdowns([(datetime(2026, 1, 5, tzinfo=UTC), Decimal(1000))])] == []
    # 5 one-hour trades over 5 Jan 11:00 .. 12 Jan 12:00 = 7 days 1 hour = 169 hours
    assert math.isclose(s.exposure_time, 5 / 169)


def test_the_max_drawdown_interval_is_the_deepest_in_percent():
    # 1000 -> 2000 (peak, 5 Jan) -> 1500 (-500, 25 %) -> 3000 (7 Jan, recovered, new peak) -> 2400 (-600, 20 %)
    ledger = [trade(1, "EURUSD", "1000", "10", 5), trade(2, "EURUSD", "-500", "-5", 6),
              trade(3, "EURUSD", "1500", "15", 7), trade(4, "EURUSD", "-600", "-6", 8)]
    s = summarize(ledger, Decimal("1000"))
    assert (s.max_drawdown, s.max_drawdown_pct) == (Decimal(600), 0.25)  # money and fraction: two periods
    assert (s.max_drawdown_start, s.max_drawdown_end) == (datetime(2026, 1, 5, 12, tzinfo=UTC),
                                                          datetime(2026, 1, 7, 12, tzinfo=UTC))


def test_exposure_counts_overlapping_trades_once_and_lots_add_up():
    def held(n: int, opened: int, closed: int, lots: str) -> TradeClosed:
        return trade(n, "EURUSD", "1", "1", 5).model_copy(update={
            "open_time": datetime(2026, 1, 5, opened, tzinfo=UTC), "close_time": datetime(2026, 1, 5, closed,
                                                                                       tzinfo=UTC),
            "lots": Decimal(lots)})

    # 10-14 and 12-16 overlap (6 hours held), 18-19 one more: 7 of the 9 hours from 10:00 to 19:00
    ledger = [held(1, 10, 14, "0.1"), held(2, 12, 16, "0.2"), held(3, 18, 19, "0.5")]
    assert math.isclose(exposure_time(ledger), 7 / 9)
    at = [(p[0].hour, p[1]) for p in open_lots(ledger)]
    assert at == [(10, Decimal("0.1")), (12, Decimal("0.3")), (14, Decimal("0.2")), (16, Decimal(0)),
                  (18, Decimal("0.5")), (19, Decimal(0))]


def test_monthly_returns_include_months_without_trades():
    curve = [(datetime(2026, 1, 20, tzinfo=UTC), Decimal(11000)), (datetime(2026, 3, 3, tzinfo=UTC), Decimal(9900))]
    # January +1000 on 10000; February unchanged; March -1100 on 11000
    assert monthly_returns(curve, Decimal(10000)) == [(2026, 1, 0.1), (2026, 2, 0.0), (2026, 3, -1100 / 11000)]
    assert monthly_returns(curve[:1] + [(datetime(2027, 1, 2, tzinfo=UTC), Decimal(11000))], Decimal(10000))[-1] \
        == (2027, 1, 0.0)  # December rolls over into January


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
    assert (s.cagr, s.calmar, s.sqn, s.exposure_time, s.max_drawdown_start, s.best_trade) == (None,) * 6
    assert s.return_pct == 0.0
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


def test_cagr_of_a_span_too_short_to_annualise_is_none_not_an_overflow():
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from eafix.reporting.metrics import cagr

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # 10,000 -> 12,000 in one hour: 1.2 ** 8766 overflows a float; reporter answered 500 on it
    assert cagr(Decimal(10000), Decimal(12000), (t0, t0 + timedelta(hours=1))) is None
    # over 365.25 days exactly: 1.2 ** 1 - 1 = 0.2; a loss in an hour: 0.8 ** 8766 - 1 -> -1.0
    assert abs(cagr(Decimal(10000), Decimal(12000), (t0, t0 + timedelta(days=365.25))) - 0.2) < 1e-12
    assert cagr(Decimal(10000), Decimal(8000), (t0, t0 + timedelta(hours=1))) == -1.0
