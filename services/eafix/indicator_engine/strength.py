"""Currency strength across the configured major currencies.

Definition (what `IndicatorVector.currency_strength` carries):

- A *pair* is a symbol whose base (first three letters) and quote (last three) are both in the
  configured currency list (default: the eight majors USD EUR GBP JPY AUD NZD CAD CHF). Other
  symbols (metals such as XAUUSD, exotics) neither contribute nor are excluded from receiving the
  current snapshot.
- The *return* of a pair for a closed bar is its percent change over that bar,
  `100 * (close / previous close - 1)`, the previous close being that of the pair's previous bar on
  the same timeframe (gaps without bars are spanned). A pair's first bar has no return.
- The strength of currency C at bar close time T on timeframe F is the arithmetic mean, over the
  pairs containing C whose latest return on F is *fresh*, of `+return` where C is the base and
  `-return` where C is the quote. Fresh means the return's bar closed at most `max_lag_bars`
  periods before T (default 1: the current or the previous bar of the pair), so a vector for the
  pair that closes first in a period still sees the others' last bar instead of nothing.
- Units: percent per bar; > 0 means the currency gained against the others on average.
  Currencies with no fresh pair are left out (the map may be empty).

Example (one bar, three pairs): EURUSD +1.0 %, USDJPY +0.5 %, EURJPY +1.2 % gives
EUR = (1.0 + 1.2) / 2 = 1.1, USD = (-1.0 + 0.5) / 2 = -0.25, JPY = (-0.5 - 1.2) / 2 = -0.85.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["MAJORS", "CurrencyStrength", "currency_strength", "split_pair"]

MAJORS: tuple[str, ...] = ("USD", "EUR", "GBP", "JPY", "AUD", "NZD", "CAD", "CHF")


def split_pair(symbol: str, currencies: Iterable[str]) -> tuple[str, str] | None:
    """(base, quote) when both halves of the 6-letter symbol are configured currencies, else None."""
    allowed = currencies if isinstance(currencies, frozenset | set) else frozenset(currencies)
    if len(symbol) != 6:
        return None
    base, quote = symbol[:3], symbol[3:]
    if base in allowed and quote in allowed and base != quote:
        return base, quote
    return None


def currency_strength(returns: Mapping[str, float], currencies: Iterable[str] = MAJORS) -> dict[str, float]:
    """Strength per currency from one return (percent) per pair symbol, as defined above."""
    allowed = frozenset(currencies)
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for symbol, ret in returns.items():
        pair = split_pair(symbol, allowed)
        if pair is None:
            continue
        base, quote = pair
        totals[base] = totals.get(base, 0.0) + ret
        counts[base] = counts.get(base, 0) + 1
        totals[quote] = totals.get(quote, 0.0) - ret
        counts[quote] = counts.get(quote, 0) + 1
    return {c: totals[c] / counts[c] for c in sorted(totals)}


class _Pair:
    __slots__ = ("base", "close", "quote", "ret", "ret_at")

    def __init__(self, base: str, quote: str) -> None:
        self.base = base
        self.quote = quote
        self.close: float | None = None
        self.ret: float | None = None
        self.ret_at = 0  # bar close (epoch microseconds) of `ret`


class CurrencyStrength:
    """Incremental currency strength, one state per timeframe (pure; no I/O)."""

    def __init__(self, currencies: Iterable[str] = MAJORS, max_lag_bars: int = 1) -> None:
        self.currencies = frozenset(currencies)
        if not self.currencies or any(len(c) != 3 or not c.isalpha() or not c.isupper() for c in self.currencies):
            raise ValueError(f"currencies must be 3-letter upper-case codes, got {sorted(self.currencies)}")
        if max_lag_bars < 0:
            raise ValueError("max_lag_bars must be >= 0")
        self.max_lag_bars = max_lag_bars
        self._pairs: dict[str, dict[str, _Pair]] = {}  # timeframe -> symbol -> pair state
        self._unknown: set[str] = set()  # symbols known not to be pairs of the configured currencies

    def observe(self, timeframe: str, symbol: str, ts_close_us: int, close: float) -> None:
        """Record a closed bar's close (updates the pair's last return)."""
        if symbol in self._unknown:
            return
        pairs = self._pairs.get(timeframe)
        if pairs is None:
            pairs = self._pairs[timeframe] = {}
        state = pairs.get(symbol)
        if state is None:
            split = split_pair(symbol, self.currencies)
            if split is None:
                self._unknown.add(symbol)
                return
            state = pairs[symbol] = _Pair(*split)
        prev = state.close
        if prev is not None:
            state.ret = 100.0 * (close / prev - 1.0)
            state.ret_at = ts_close_us
        state.close = close

    def snapshot(self, timeframe: str, ts_close_us: int, period_us: int) -> dict[str, float]:
        """Strength at bar close `ts_close_us` on `timeframe` from the fresh pair returns."""
        pairs = self._pairs.get(timeframe)
        if not pairs:
            return {}
        oldest = ts_close_us - self.max_lag_bars * period_us
        totals: dict[str, list] = {}  # currency -> [sum, count]
        for state in pairs.values():
            ret = state.ret
            if ret is None or not oldest <= state.ret_at <= ts_close_us:
                continue
            acc = totals.get(state.base)
            if acc is None:
                totals[state.base] = [ret, 1]
            else:
                acc[0] += ret
                acc[1] += 1
            acc = totals.get(state.quote)
            if acc is None:
                totals[state.quote] = [-ret, 1]
            else:
                acc[0] -= ret
                acc[1] += 1
        return {c: acc[0] / acc[1] for c, acc in totals.items()}

    def forget(self, timeframe: str, symbol: str) -> None:
        pairs = self._pairs.get(timeframe)
        if pairs is not None:
            pairs.pop(symbol, None)
