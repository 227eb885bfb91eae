"""`eafix optimize`: a parameter sweep of a strategies template over a data file (docs/backtest.md).

    eafix optimize --data EURUSD_H1.csv --strategy sma_cross.yaml \\
        --grid 'fast=5..30:5' --grid 'slow=20..100:10' --constraint 'fast < slow' --maximize sharpe

writes to --out: results.csv (or .parquet: one row per combination, its parameters, every statistic,
its counts and rank), heatmap.png (the objective over two parameters), walk_forward.csv (with
--walk-forward N) and top-<k>/ for the best --reports combinations: the filled strategy.yaml,
trades.csv and the report, as `eafix backtest` writes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from eafix.backtest.cli import _write_report

EXIT_USAGE = 2


def _inputs(args: argparse.Namespace):
    """Everything checked before a run starts: (grids, the combinations kept, the grid's size, the objective's
    column, the heatmap's two parameters or None, the job, the dataset). Raises the errors `_optimize` turns
    into exit code 2."""
    from eafix.backtest.data import load
    from eafix.backtest.optimize import COUNTS, STATISTICS, Job, objective_column, split_windows, strategies_for
    from eafix.backtest.sweep import SweepError, Template, combinations, parse_constraint, parse_grids

    grids = parse_grids(args.grid)
    names = [g.name for g in grids]
    for name in names:
        if name in (*STATISTICS, *COUNTS, "rank"):
            raise SweepError(f"--grid {name}: a column of the results has that name; call the parameter otherwise")
    constraints = [parse_constraint(c, names) for c in args.constraint]
    column = objective_column(args.minimize or args.maximize)
    template = Template(args.strategy.read_text(encoding="utf-8"), str(args.strategy))
    template.check(names)
    combos, total = combinations(grids, constraints)
    if not combos:
        raise SweepError(f"no combination of the {total} in the grid meets the constraints")
    heat = [h.strip() for h in args.heatmap.split(",")] if args.heatmap else names[:2] if len(names) > 1 else None
    if heat is not None and (len(heat) != 2 or not set(heat) <= set(names) or heat[0] == heat[1]):
        raise SweepError(f"--heatmap {args.heatmap!r}: name two different grid parameters ({', '.join(names)})")
    for option in ("walk_forward", "reports"):
        if getattr(args, option) < 0:
            raise SweepError(f"--{option.replace('_', '-')}: cannot be negative")
    if args.workers is not None and args.workers < 1:
        raise SweepError("--workers: at least 1")
    try:
        Decimal(args.spread_pips)
    except InvalidOperation:
        raise SweepError(f"--spread-pips {args.spread_pips!r} is not a number") from None
    job = Job(args.data, template, symbol=args.symbol, timeframe=args.timeframe, spread_pips=args.spread_pips,
              close_at_end=args.close_at_end, windows=args.walk_forward + 1 if args.walk_forward else 1)
    dataset = load(job.data, symbol=job.symbol, timeframe=job.timeframe)
    if args.walk_forward:
        split_windows(dataset, job.windows)
    for params in combos:  # a value the strategy refuses (sma(1)) stops the sweep before it starts
        strategies_for(job, params)
    return grids, combos, total, column, heat, job, dataset


def _results_path(args: argparse.Namespace, out: Path) -> tuple[Path, str]:
    if args.results is not None:
        form = args.format or ("parquet" if args.results.suffix.lower() == ".parquet" else "csv")
        return args.results, form
    form = args.format or "csv"
    return out / f"results.{form}", form


def _write_table(rows: list[dict], path: Path, form: str) -> None:
    import polars as pl

    frame = pl.DataFrame(rows, infer_schema_length=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    if form == "parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)


def _figure(value: object) -> str:
    return "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_top(rows: list[dict], names: list[str], column: str, count: int = 5) -> None:
    shown = [*names, column, "trades", "return_pct", "max_drawdown_pct"]
    shown = list(dict.fromkeys(shown))
    print("  ".join(f"{c:>12}" for c in ["rank", *shown]))
    for row in rows[:count]:
        print("  ".join(f"{_figure(row[c]):>12}" for c in ["rank", *shown]))


def _walk_forward(pool, job, combos, names, column, maximize, out: Path, progress) -> Path:
    from eafix.backtest.optimize import walk_forward

    splits = walk_forward(pool, job, combos, column, maximize, progress)
    table = [{"split": s.number, "in_sample_start": s.in_sample[0].isoformat(),
              "in_sample_end": s.in_sample[1].isoformat(), "out_of_sample_start": s.out_of_sample[0].isoformat(),
              "out_of_sample_end": s.out_of_sample[1].isoformat(), **s.params,
              f"in_sample_{column}": s.in_sample_row[column], f"out_of_sample_{column}": s.out_of_sample_row[column],
              "in_sample_trades": s.in_sample_row["trades"], "out_of_sample_trades": s.out_of_sample_row["trades"]}
             for s in splits]
    path = out / "walk_forward.csv"
    _write_table(table, path, "csv")
    print(f"walk-forward, {len(splits)} splits (best in-sample parameters on the next window):")
    for s in splits:
        print(f"  {s.number}: in {s.in_sample[0]:%Y-%m-%d}..{s.in_sample[1]:%Y-%m-%d} "
              f"{column} {_figure(s.in_sample_row[column])} ({s.in_sample_row['trades']} trades), "
              f"out {s.out_of_sample[0]:%Y-%m-%d}..{s.out_of_sample[1]:%Y-%m-%d} "
              f"{column} {_figure(s.out_of_sample_row[column])} ({s.out_of_sample_row['trades']} trades) "
              f"with {', '.join(f'{n}={s.params[n]}' for n in names)}")
    return path


def _reports(rows: list[dict], names: list[str], job, dataset, out: Path, form: str) -> None:
    from eafix.backtest.optimize import backtest, strategies_for
    from eafix.backtest.sweep import describe
    from eafix.reporting.metrics import summarize
    from eafix.reporting.render import write_trades_csv

    for row in rows:
        params = {n: row[n] for n in names}
        result = backtest(dataset, strategies_for(job, params), job)  # again, in full: the report needs its events
        summary = summarize(result.trades, result.opening_balance, result.account_currency)
        target = out / f"top-{row['rank']}"
        target.mkdir(parents=True, exist_ok=True)
        (target / "strategy.yaml").write_text(job.template.render(params), encoding="utf-8")
        write_trades_csv(result.trades, target / "trades.csv")
        report = _write_report(result, summary, f"EAFIX optimize #{row['rank']}: {describe(params)}", target, form)
        print(f"wrote {report}, {target / 'trades.csv'} and {target / 'strategy.yaml'}")


def _optimize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from eafix.backtest.data import DataError
    from eafix.backtest.optimize import Pool, default_workers, ranked
    from eafix.backtest.sweep import SweepError
    from eafix.contracts.strategies import StrategyConfigError
    from eafix.reporting.heatmap import write_heatmap

    try:
        grids, combos, total, column, heat, job, dataset = _inputs(args)
    except (SweepError, DataError, StrategyConfigError, OSError) as exc:
        print(f"eafix optimize: {exc}", file=sys.stderr)
        return EXIT_USAGE
    names = [g.name for g in grids]
    maximize = args.minimize is None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = len(combos) * (1 + args.walk_forward) + args.walk_forward
    started = time.perf_counter()
    bar = tqdm(total=runs, desc="eafix optimize", unit="run", disable=None)  # drawn on a terminal only
    with Pool(job, args.workers or default_workers()) as pool, bar:
        rows = pool.map([(p, 0) for p in combos], bar.update)
        order = ranked(rows, column, maximize)
        for rank, i in enumerate(order, 1):
            rows[i]["rank"] = rank
        walked = None
        if args.walk_forward:
            walked = _walk_forward(pool, job, combos, names, column, maximize, out, bar.update)
    elapsed = time.perf_counter() - started
    print(f"{len(combos)} combinations ({total} in the grid, {total - len(combos)} pruned by constraints), "
          f"{runs} runs on {pool.workers} worker{'s' * (pool.workers > 1)} in {elapsed:.1f} s")
    best_first = [rows[i] for i in order]
    _print_top(best_first, names, column)
    results, form = _results_path(args, out)
    _write_table(rows, results, form)
    written = [results]
    if heat is not None:
        xs, ys = (next(g.values for g in grids if g.name == h) for h in heat)
        title = f"{args.strategy.name} on {args.data.name}: {column} ({'max' if maximize else 'min'}imized)"
        written.append(write_heatmap(rows, heat[0], xs, heat[1], ys, column, maximize,
                                     out / f"heatmap.{args.heatmap_format}", title))
    print(f"wrote {', '.join(map(str, written + ([walked] if walked else [])))}")
    _reports(best_first[:args.reports], names, job, dataset, out, args.report_format)
    return 0


def add_parser(sub) -> None:
    op = sub.add_parser("optimize", help="sweep a strategy's parameters over a grid: results table, heatmap, "
                                         "walk-forward and the best runs' reports",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    op.add_argument("--data", required=True, type=Path, help="OHLCV bars or ticks, CSV or .parquet (as for backtest)")
    op.add_argument("--strategy", required=True, type=Path,
                    help="strategies YAML with {name} placeholders where the grid's values go, e.g. sma({fast})")
    op.add_argument("--grid", action="append", required=True, metavar="NAME=A..B:STEP|NAME=V1,V2",
                    help="a parameter's values: fast=5..30:5 (5 to 30 inclusive, step 5; step 1 if left out) or "
                         "fast=5,10,20; once per parameter")
    op.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                    help="keep only combinations where EXPR holds, e.g. 'fast < slow' or 'slow >= 2 * fast' "
                         "(comparisons, and/or/not, + - * / %%, numbers and grid names)")
    goal = op.add_mutually_exclusive_group()
    goal.add_argument("--maximize", default="sharpe", metavar="STATISTIC",
                      help="the objective (default sharpe): return, sharpe, sortino, calmar, profit_factor, sqn, "
                           "win_rate, net_pnl, ... (a statistic of the report)")
    goal.add_argument("--minimize", metavar="STATISTIC", help="an objective to minimize, e.g. max_drawdown_pct")
    op.add_argument("--workers", type=int, default=None, help="processes (default: every core this process may use)")
    op.add_argument("--walk-forward", type=int, default=0, metavar="N",
                    help="also cut the data into N+1 equal windows and, for each of N splits, run the best "
                         "in-sample combination on the next window (walk_forward.csv)")
    op.add_argument("--reports", type=int, default=1, metavar="N",
                    help="write the report of the best N combinations (top-1/ ...; default 1, 0 for none)")
    op.add_argument("--report-format", default="html", choices=("html", "png", "json"), help="as backtest --format")
    op.add_argument("--results", type=Path, help="the results table (default OUT/results.csv; .parquet for Parquet)")
    op.add_argument("--format", choices=("csv", "parquet"), help="the results table's format (default: by extension)")
    op.add_argument("--heatmap", metavar="X,Y", help="the two parameters of the heatmap (default: the first two grids)")
    op.add_argument("--heatmap-format", default="png", choices=("png", "svg"), help="heatmap.png (default) or .svg")
    op.add_argument("--timeframe", default="H1", help="timeframe of the bars (default H1)")
    op.add_argument("--symbol", default="EURUSD", help="symbol of an OHLCV file without a symbol column")
    op.add_argument("--spread-pips", default="1.0", help="spread added to bar closes for quotes (default 1.0)")
    op.add_argument("--close-at-end", action="store_true",
                    help="close the positions still open after the last bar at its price (reason MANUAL)")
    op.add_argument("--out", default="out/optimize", help="directory of the results (default out/optimize)")
    op.set_defaults(func=_optimize)
