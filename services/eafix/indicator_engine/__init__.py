"""indicator-engine (8082): OHLC bars from ticks and incremental indicators per closed bar.

- `indicators`: streaming EMA, SMA, RSI, MACD, Bollinger, ATR equal to TA-Lib's batch output;
- `strength`: currency strength across the configured majors;
- `domain`: the pure part: `BarBuilder` (ticks -> bars on UTC boundaries) and `IndicatorEngine`
  (bars -> IndicatorVector, polars warm-up);
- `stage`: the bus handlers; `app`: `build_router(engine)` with `GET /api/v1/indicators/{symbol}`;
  `service`: the process.
"""
