"""What reporter keeps of the market for its report's price chart, in bounded memory whatever the
uptime: the bars of one timeframe folded into at most MAX_CANDLES candles per symbol (coarsening as
time goes on: `eafix.reporting.candles.CandleBook`) and the last MAX_SUPPRESSED suppressed signals.

Neither is stored in PostgreSQL: at start (and when this replica takes the topics over) both are
seeded from what the bus still holds of their streams (`Bus.history`, bounded by the streams'
retention), then followed live; a bar or suppression seen twice changes nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime

from eafix.contracts import Bar, SignalSuppressed
from eafix.reporting.candles import MAX_CANDLES, CandleBook, Candles

MAX_SUPPRESSED = 2000


class MarketView:
    def __init__(self, timeframe: str, limit: int = MAX_CANDLES, max_suppressed: int = MAX_SUPPRESSED) -> None:
        self.candles = CandleBook(timeframe, limit)
        self.max_suppressed = max_suppressed
        self._suppressed: deque[SignalSuppressed] = deque(maxlen=max_suppressed)
        self._seen: set[tuple[str, str, datetime]] = set()  # the deque's (symbol, strategy, ts), for redelivery

    def on_bar(self, bar: Bar) -> None:
        self.candles.add(bar)

    def on_suppressed(self, suppressed: SignalSuppressed) -> None:
        key = (suppressed.symbol, suppressed.strategy, suppressed.ts)
        if key in self._seen:
            return
        if len(self._suppressed) == self.max_suppressed:
            oldest = self._suppressed[0]
            self._seen.discard((oldest.symbol, oldest.strategy, oldest.ts))
        self._suppressed.append(suppressed)
        self._seen.add(key)

    def seed(self, bars: Iterable[Bar], suppressions: Iterable[SignalSuppressed]) -> None:
        for bar in bars:
            self.on_bar(bar)
        for suppressed in sorted(suppressions, key=lambda s: s.ts):  # history comes newest first
            self.on_suppressed(suppressed)

    def price(self, start: datetime | None, end: datetime | None) -> tuple[list[Candles], list[SignalSuppressed]]:
        """The candles opening and the suppressed signals falling in [start, end) (None: unbounded)."""
        return self.candles.candles(start, end), [
            s for s in self._suppressed if (start is None or s.ts >= start) and (end is None or s.ts < end)]
