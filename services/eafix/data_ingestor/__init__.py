"""data-ingestor (8081): price-feed normalization, publishes PriceTick on `eafix.price.tick`.

- `domain`: the pure part: `TickNormalizer` (symbol, prices, spread bounds in the instrument's pips, age
  against the injected clock, per-symbol order, duplicate keys), two-phase evaluate/commit;
- `mt4_bridge`: the MT4 CSV bridge (watched directory, temp -> rename, file_seq, SHA-256 row
  checksums, quarantine) feeding the same normalizer;
- `app`: `build_router(...)` with `POST /api/v1/ticks` and `GET /api/v1/prices/latest`, and the
  `TickPipeline` (normalize -> publish -> commit) shared by HTTP and the bridge.
"""
