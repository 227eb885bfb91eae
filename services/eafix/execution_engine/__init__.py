"""execution-engine (8085): OMS state machine, broker adapters (simulated, paper, MT4 file bridge),
positions and trade P&L.

- `domain`: the pure part: the OMS transition table, `ExecutionEngine` (orders -> broker -> the one
  fill path that builds positions, P&L and `TradeClosed`) and the `Broker` port; pips, contract
  sizes and conversions come from eafix.instruments;
- `brokers`: `SimulatedBarBroker` (backtest) and `PaperBroker` (live ticks) on one simulator base;
- `mt4_bridge`: `MT4Broker` (port side, an outbox) and `MT4FileBridge` (atomic CSV files to/from the EA);
- `repository`: orders, fills, positions, trades and the outbox (in memory and PostgreSQL);
- `gateway`: `ExecutionGateway` (engine call -> store with the outbox -> publish, serialised);
- `stage`: the bus handlers; `app`: the HTTP routes; `service`: the process.
"""
