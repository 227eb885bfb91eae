"""risk-manager (8084): validation, position sizing, limits between strategy and execution.

`domain` is pure (RiskEngine, Portfolio, sizing, rules); `repository` persists the portfolio
(in memory or PostgreSQL schema `risk`); `app` exposes the synchronous HTTP checks.
"""
