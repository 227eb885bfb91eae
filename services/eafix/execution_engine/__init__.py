"""execution-engine (8085): OMS state machine, broker adapters (simulated, paper, MT4 file bridge),
positions and trade P&L.

- `domain`: the pure part: the OMS transition table, `ExecutionEngine` (orders -> broker -> the one
  fill path that builds positions, P&L and `TradeClosed`), pips and currency conversion;
- `brokers`: the `Broker` port with `SimulatedBarBroker` (backtest) and `PaperBroker` (live ticks);
- `mt4_bridge`: `MT4Broker` (port side, an outbox) and `MT4FileBridge` (atomic CSV files to/from the EA);
- `repository`: orders, fills, positions and trades (in memory and PostgreSQL);
- `app`: the HTTP routes and `ExecutionGateway` (engine call -> persist -> publish, serialised).
"""
