"""The one report module of EAFIX: trading statistics over a trade ledger and their renderings.

Shared by the backtest (`eafix backtest` writes report.html/png/json and trades.csv from it) and the
reporter service (its routes serve the same figures and the same HTML), so a replayed ledger gives the
same numbers in both. A shared domain package: it imports only the kernel and the contracts; plotly,
matplotlib and polars are imported when a chart, a picture or a breakdown is asked for.

- `metrics`: every statistic (the summary the peers show), exact in Decimal; `drawdown`: its periods;
- `breakdown`: the same figures per symbol, strategy or UTC day, computed with polars;
- `content`: what a report shows; `candles`: bars resampled for the price chart;
- `charts`: the Plotly figures; `page`: the HTML report; `picture`: the PNG (matplotlib);
- `render`: the statistics table and text summary, trades.csv, equity CSV, the JSON report.
"""
