"""`eafix backtest` and `eafix sample-data`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from decimal import Decimal
from pathlib import Path

DEFAULT_SAMPLE = Path("out/sample/EURUSD_H1.csv")


def _backtest(args: argparse.Namespace) -> int:
    from eafix.backtest.batch import BatchScopeError, run_batch
    from eafix.backtest.data import DataError, load
    from eafix.backtest.runner import CalendarFileError, MatrixError, load_calendar, load_matrix, run
    from eafix.contracts import Bar
    from eafix.reporting.metrics import summarize
    from eafix.reporting.render import format_summary, write_trades_csv
    from eafix.signal_generator.config import StrategyConfigError, load_default_strategies, load_strategies_file

    try:
        dataset = load(args.data, symbol=args.symbol, timeframe=args.timeframe)
        strategies = load_strategies_file(args.strategy) if args.strategy else load_default_strategies()
        matrix = load_matrix(args.reentry_matrix) if args.reentry_matrix else load_matrix() if args.reentry else None
        calendar = load_calendar(args.calendar, args.calendar_timezone) if args.calendar else None
        if args.batch and (matrix is not None or calendar is not None or dataset.kind != "bars"):
            raise BatchScopeError("--batch replays bars without --reentry or --calendar (their stages see every "
                                  "event): drop --batch for the event-driven replay")
    except (DataError, StrategyConfigError, MatrixError, CalendarFileError, BatchScopeError, OSError) as exc:
        print(f"eafix backtest: {exc}", file=sys.stderr)
        return 2
    if args.batch:  # the batch path holds its bars (random access): read before the clock starts, as before
        bars: list[Bar] = list(dataset.events)  # type: ignore[arg-type]  # bars: checked above
        dataset = dataclasses.replace(dataset, events=bars)
        try:  # imported before the clock starts (TA-Lib, numpy: ~1 s), as a peer's run is timed without them
            import eafix.backtest.vectorized  # noqa: F401
        except ImportError:
            print("eafix backtest: no TA-Lib/numpy (the `backtest` extra): --batch replays bar after bar",
                  file=sys.stderr)
    started = time.perf_counter()
    options = {"timeframe": args.timeframe, "spread_pips": Decimal(args.spread_pips), "close_at_end": args.close_at_end}
    result = asyncio.run(run_batch(dataset, strategies, **options) if args.batch
                         else run(dataset, strategies, reentry=matrix, calendar=calendar, **options))
    elapsed = time.perf_counter() - started
    summary = summarize(result.trades, result.opening_balance, result.account_currency)
    kind = "bars" if dataset.kind == "bars" else "ticks"
    print(f"backtest {', '.join(dataset.symbols)} {args.timeframe}: {result.inputs} {kind} in {elapsed:.3f} s "
          f"({result.inputs / elapsed:,.0f} {kind}/s)")
    print(f"signals {result.signals} (suppressed {result.suppressed}), orders {result.orders}, "
          f"risk rejections {result.rejected}")
    if calendar is not None:
        print(f"calendar {len(calendar)} events: signals suppressed by blackouts {result.blackout_suppressed}, "
              f"risk rejections for blackouts {result.blackout_rejected}")
    if matrix is not None:
        chains = result.chains()
        print(f"re-entry decisions {len(result.reentry_decisions)}: R1 {chains['R1']}, R2 {chains['R2']} "
              f"(matrix {matrix.matrix_version})")
    print(format_summary(summary))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_trades_csv(result.trades, out / "trades.csv")
    started = time.perf_counter()
    report = _write_report(result, summary, f"EAFIX backtest {', '.join(dataset.symbols)} {args.timeframe}",
                           out, args.format)
    print(f"wrote {report} ({report.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s) "
          f"and {out / 'trades.csv'}")
    return 0


def _write_report(result, summary, title: str, out: Path, form: str) -> Path:
    """report.html, report.png or report.json in `out`; the one renderer of each format."""
    from eafix.reporting.breakdown import DIMENSIONS, breakdown
    from eafix.reporting.content import ReportContent

    content = ReportContent(
        title, result.trades, summary, {by: breakdown(result.trades, by, result.strategy_of) for by in DIMENSIONS},
        result.reentry_decisions, (), result.suppressions, result.levels,
        {"inputs": result.inputs, "signals": result.signals, "suppressed": result.suppressed,
         "orders": result.orders, "risk rejections": result.rejected}, result.candles)
    path = out / f"report.{form}"
    if form == "html":
        from eafix.reporting.page import write_html

        write_html(content, path)
    elif form == "png":
        from eafix.reporting.picture import write_png

        write_png(content, path)
    else:
        from eafix.reporting.render import report_json

        path.write_text(report_json(content))
    return path


def _sample_data(args: argparse.Namespace) -> int:
    from eafix.backtest.data import load, write_sample
    from eafix.backtest.sample_calendar import write_sample_calendar
    from eafix.contracts import Bar

    path = write_sample(args.out, seed=args.seed, bars=args.bars, symbol=args.symbol, timeframe=args.timeframe)
    print(f"wrote {args.bars} {args.symbol} {args.timeframe} bars (seed {args.seed}) to {path}")
    if args.calendar:
        bars = [e for e in load(path, symbol=args.symbol, timeframe=args.timeframe).events if isinstance(e, Bar)]
        first, last = bars[0].ts_open.date(), bars[-1].ts_close.date()
        written = write_sample_calendar(path.with_name(f"{path.stem}_calendar.csv"), first, last, seed=args.seed)
        print(f"wrote a calendar {first}..{last} (seed {args.seed}) to {written}")
    return 0


def add_parsers(sub) -> None:
    bt = sub.add_parser("backtest", help="replay bars or ticks through the five pipeline services in one process")
    bt.add_argument("--data", required=True, type=Path, help="OHLCV (timestamp,open,high,low,close[,volume]) or ticks "
                                                           "(ts,symbol,bid,ask[,volume]), CSV or .parquet")
    bt.add_argument("--strategy", type=Path, help="strategies YAML (default: the shipped strategies)")
    bt.add_argument("--timeframe", default="H1", help="timeframe of the bars (default H1)")
    bt.add_argument("--symbol", default="EURUSD", help="symbol of an OHLCV file without a symbol column")
    bt.add_argument("--spread-pips", default="1.0", help="spread added to bar closes for quotes (default 1.0)")
    bt.add_argument("--reentry", action="store_true",
                    help="decide every closed trade with the shipped re-entry matrix and replay the re-entries")
    bt.add_argument("--reentry-matrix", type=Path, help="a re-entry matrix YAML instead of the shipped one "
                                                        "(implies --reentry)")
    bt.add_argument("--calendar", type=Path, help="economic calendar CSV (ForexFactory format): blackouts gate "
                                                 "entries and re-entries are keyed by proximity")
    bt.add_argument("--calendar-timezone", default="America/New_York",
                    help="IANA zone of the calendar's naive times (default America/New_York)")
    bt.add_argument("--batch", action="store_true",
                    help="the fast path: indicators and signals without the bus, risk and execution only on bars "
                         "where something happens; the same trades (bars only, no --reentry/--calendar)")
    bt.add_argument("--close-at-end", action="store_true",
                    help="close the positions still open after the last bar at its price (reason MANUAL)")
    bt.add_argument("--out", default="out/backtest", help="directory for report.<format> and trades.csv")
    bt.add_argument("--format", default="html", choices=("html", "png", "json"),
                    help="report.html (interactive charts, opens offline), report.png (a picture) or report.json "
                         "(every statistic); default html")
    bt.set_defaults(func=_backtest)

    sd = sub.add_parser("sample-data", help="write a seeded, reproducible OHLCV sample")
    sd.add_argument("--out", type=Path, default=DEFAULT_SAMPLE)
    sd.add_argument("--seed", type=int, default=7)
    sd.add_argument("--bars", type=int, default=5000)
    sd.add_argument("--symbol", default="EURUSD")
    sd.add_argument("--timeframe", default="H1")
    sd.add_argument("--calendar", action="store_true",
                    help="also write a seeded calendar for the bars' dates beside them (<name>_calendar.csv)")
    sd.set_defaults(func=_sample_data)
