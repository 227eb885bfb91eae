"""risk-manager (8084): validation, position sizing, limits between strategy and execution.

Pure domain (no I/O): `config` (RiskConfig, the policy table), `sizing` (the lot formula),
`portfolio` (positions, realized P&L, change records), `rules` (the pre-trade checks) and `engine`
(RiskEngine). Adapters: `repository` persists the portfolio (in memory or PostgreSQL schema `risk`),
`stage` is the bus handler, `app` the synchronous HTTP checks, `service` the process.
"""
