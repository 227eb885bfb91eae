"""Forex conventions every service shares, so sizing, spreads, stops and P&L agree."""

from __future__ import annotations

from decimal import Decimal

JPY_PIP = Decimal("0.01")
PIP = Decimal("0.0001")


def pip_size(symbol: str) -> Decimal:
    """0.01 when the quote currency is JPY (USDJPY, EURJPY, ...), else 0.0001. Services layer their
    configured overrides (metals, broker instruments) on top of this rule."""
    return JPY_PIP if symbol[3:] == "JPY" else PIP
