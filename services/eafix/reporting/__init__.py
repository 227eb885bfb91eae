"""The one report module of EAFIX: trading statistics over a trade ledger and their renderings.

Shared by the backtest (`eafix backtest` writes report.html and trades.csv from it) and the reporter
service (its routes serve the same figures and the same HTML), so a replayed ledger gives the same
numbers in both. A shared domain package: it imports only the kernel and the contracts.

- `metrics`: the summary (win rate, profit factor, drawdown, Sharpe, Sortino, ...), exact in Decimal;
- `breakdown`: the same figures per symbol, strategy or UTC day, computed with polars (lazy import);
- `render`: text summary, trades.csv, equity curve as SVG/CSV, the HTML report.
"""
