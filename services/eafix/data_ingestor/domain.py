"""Price-feed normalization: raw quotes (HTTP batch, MT4 CSV bridge) -> PriceTick. Pure: no I/O.

Rules, applied to every raw tick in this order (the first failure is the rejection reason):

1. `symbol`: a string, trimmed and upper-cased, exactly six letters (`^[A-Z]{6}$`). Metals are
   six-letter symbols too (XAUUSD, XAGUSD).
2. `ts` (alias `timestamp`): an RFC 3339 time with `Z` or an offset (converted to UTC, at most 6
   fractional digits), or Unix epoch seconds as a number. A time without offset is refused, except
   from the CSV bridge (`naive_utc=True`), whose MT4 writer emits UTC as `YYYY.MM.DD HH:MM:SS`
   (also `YYYY-MM-DD HH:MM:SS`); epoch seconds are accepted there as numeric text.
3. `bid`, `ask`: decimal strings (or JSON numbers, taken by their shortest text form), finite,
   bid > 0, at most 8 decimal places and 12 integer digits (the contract's Price); ask >= bid.
4. Spread in pips = (ask - bid) / pip size, exact decimal arithmetic, must lie in
   [min_spread_pips, max_spread_pips] (defaults 0.1 and 100, bounds inclusive).
   Pip size from the instrument table (eafix.instruments): the one every other service uses.
5. `volume`: optional integer >= 0; null, empty or -1 (MT4's "absent") become null.
6. Age against the injected clock: now - ts <= max_price_age_seconds (30; exactly 30 s passes,
   30.001 s is stale), and ts - now <= max_future_seconds (5; a feed clock running ahead).
7. Duplicate: the key `symbol:ts:bid:ask` (prices normalised, so 1.10 == 1.1) seen before is
   *dropped*, not rejected: a retried batch is idempotent. Keys are kept while they can still
   match a fresh tick (max_price_age_seconds + max_future_seconds), at most `dedupe_capacity`
   per symbol.
8. Order: a tick older than the last accepted tick of its symbol is rejected (`out_of_order`);
   equal timestamps with different prices are accepted.

Two-phase use: `evaluate(raws)` decides every tick of a batch (later ticks see the earlier
accepted ones of the same batch) without changing state; after the accepted ticks were
published, `commit(result)` records them (order, duplicates, latest prices). If publishing fails
nothing is committed and the same batch can be retried. `ingest()` does both at once.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from eafix.contracts.events import PriceTick
from eafix.contracts.primitives import PATTERNS, format_timestamp
from eafix.instruments import DEFAULT_INSTRUMENTS, Instrument, Instruments
from eafix.runtime.clock import Clock
from eafix.timestamps import parse_timestamp

__all__ = [
    "BatchResult",
    "IngestConfig",
    "Reason",
    "Rejection",
    "TickNormalizer",
    "spread_pips",
]

MAX_BATCH = 10_000

class Reason(StrEnum):
    """Rejection reason codes (stable API: clients may switch on them)."""

    NOT_AN_OBJECT = "not_an_object"
    SYMBOL_INVALID = "symbol_invalid"
    TS_INVALID = "ts_invalid"
    BID_INVALID = "bid_invalid"
    ASK_INVALID = "ask_invalid"
    ASK_BELOW_BID = "ask_below_bid"
    SPREAD_BELOW_MIN = "spread_below_min"
    SPREAD_ABOVE_MAX = "spread_above_max"
    VOLUME_INVALID = "volume_invalid"
    STALE = "stale"
    IN_FUTURE = "in_future"
    OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True)
class IngestConfig:
    max_price_age_seconds: float = 30.0
    max_future_seconds: float = 5.0
    min_spread_pips: Decimal = Decimal("0.1")
    max_spread_pips: Decimal = Decimal("100")
    max_batch: int = MAX_BATCH
    dedupe_capacity: int = 100_000  # remembered keys per symbol

    def __post_init__(self) -> None:
        if self.max_price_age_seconds <= 0 or self.max_future_seconds < 0:
            raise ValueError("max_price_age_seconds must be > 0 and max_future_seconds >= 0")
        if not (Decimal(0) <= Decimal(self.min_spread_pips) <= Decimal(self.max_spread_pips)):
            raise ValueError("need 0 <= min_spread_pips <= max_spread_pips")
        if self.max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        object.__setattr__(self, "min_spread_pips", Decimal(str(self.min_spread_pips)))
        object.__setattr__(self, "max_spread_pips", Decimal(str(self.max_spread_pips)))


def spread_pips(instrument: Instrument, bid: Decimal, ask: Decimal) -> Decimal:
    return instrument.pips(ask - bid)


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: Reason
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason.value, "detail": self.detail}


@dataclass
class BatchResult:
    """Decision on one batch: accepted ticks (in input order), rejections and dropped duplicates."""

    accepted: list[PriceTick] = field(default_factory=list)
    accepted_indices: list[int] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    _keys: list[str] = field(default_factory=list, repr=False)
    _committed: bool = field(default=False, repr=False)


class _Invalid(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --- field parsing ---------------------------------------------------------------------------------

_SYMBOL = re.compile(PATTERNS["Symbol"])
_PRICE = re.compile(PATTERNS["Price"])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # tick times are kept as integer microseconds since
_ONE_US = timedelta(microseconds=1)


def _price(value: Any, name: str, reason: Reason) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise _Invalid(reason, f"{name} is missing" if value is None else f"{name} must be a decimal")
    if isinstance(value, float | int):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, Decimal):
        text = format(value, "f") if value.is_finite() else str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise _Invalid(reason, f"{name} must be a decimal string such as '1.0842'")
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise _Invalid(reason, f"{name} {text!r} is not a number") from None
    if not price.is_finite():
        raise _Invalid(reason, f"{name} {text!r} is not finite")
    if price <= 0:
        raise _Invalid(reason, f"{name} {text} must be > 0")
    if not _PRICE.search(format(price, "f")):
        raise _Invalid(reason, f"{name} {text} has more than 8 decimal places or 12 integer digits")
    return price


def _volume(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Invalid(Reason.VOLUME_INVALID, "volume must be an integer")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = int(text)
        except ValueError:
            raise _Invalid(Reason.VOLUME_INVALID, f"volume {text!r} is not an integer") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise _Invalid(Reason.VOLUME_INVALID, "volume must be an integer")
    if value == -1:
        return None  # MT4: -1 means "no volume"
    if value < 0:
        raise _Invalid(Reason.VOLUME_INVALID, f"volume {value} must be >= 0")
    return value


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.6f}".rstrip("0").rstrip(".")


# --- normalizer ------------------------------------------------------------------------------------


class _SymbolState:
    __slots__ = ("keys", "last_us", "latest", "seen")

    def __init__(self) -> None:
        self.last_us: int | None = None
        self.keys: deque[tuple[int, str]] = deque()
        self.seen: set[str] = set()
        self.latest: PriceTick | None = None


class TickNormalizer:
    """Validates and normalises raw ticks against the injected clock (see module docstring)."""

    def __init__(self, clock: Clock, config: IngestConfig | None = None, *,
                 instruments: Instruments = DEFAULT_INSTRUMENTS) -> None:
        self.instruments = instruments
        self.clock = clock
        self.config = config or IngestConfig()
        self._max_age = timedelta(seconds=self.config.max_price_age_seconds)
        self._max_future = timedelta(seconds=self.config.max_future_seconds)
        self._symbols: dict[str, _SymbolState] = {}

    # -- one tick ---------------------------------------------------------------------------------

    def _parse(self, raw: Any, now: datetime, naive_utc: bool) -> PriceTick:
        if not isinstance(raw, Mapping):
            raise _Invalid(Reason.NOT_AN_OBJECT, "a tick must be an object with symbol, ts, bid, ask[, volume]")
        symbol = raw.get("symbol")
        if not isinstance(symbol, str) or not _SYMBOL.search(symbol.strip().upper()):
            raise _Invalid(Reason.SYMBOL_INVALID, f"symbol {symbol!r} is not six letters such as EURUSD")
        symbol = symbol.strip().upper()
        ts_value = raw.get("ts", raw.get("timestamp"))
        if ts_value is None:
            raise _Invalid(Reason.TS_INVALID, "ts is missing")
        try:
            ts = parse_timestamp(ts_value, naive_utc=naive_utc, epoch_text=naive_utc)
        except ValueError as exc:
            raise _Invalid(Reason.TS_INVALID, f"ts: {exc}") from None
        bid = _price(raw.get("bid"), "bid", Reason.BID_INVALID)
        ask = _price(raw.get("ask"), "ask", Reason.ASK_INVALID)
        if ask < bid:
            raise _Invalid(Reason.ASK_BELOW_BID, f"ask {ask} is below bid {bid}")
        instrument = self.instruments[symbol]
        spread = spread_pips(instrument, bid, ask)
        pip = instrument.pip_size
        if spread < self.config.min_spread_pips:
            raise _Invalid(Reason.SPREAD_BELOW_MIN,
                           f"spread {_plain(spread)} pips is below the minimum {self.config.min_spread_pips} "
                           f"(pip {pip})")
        if spread > self.config.max_spread_pips:
            raise _Invalid(Reason.SPREAD_ABOVE_MAX,
                           f"spread {_plain(spread)} pips is above the maximum {self.config.max_spread_pips} "
                           f"(pip {pip})")
        volume = _volume(raw.get("volume"))
        age = now - ts
        if age > self._max_age:
            raise _Invalid(Reason.STALE, f"tick is {_seconds(age)} s old (max {self.config.max_price_age_seconds:g} s)")
        if -age > self._max_future:
            raise _Invalid(Reason.IN_FUTURE, f"tick is {_seconds(-age)} s ahead of the clock "
                                             f"(max {self.config.max_future_seconds:g} s)")
        # the checks above are the contract's (tests/service/test_properties_data_ingestor.py holds them to
        # it): the tick is not validated a second time
        return PriceTick.trusted({"symbol": symbol, "ts": ts, "bid": bid, "ask": ask, "volume": volume})

    @staticmethod
    def key(tick: PriceTick) -> str:
        """Idempotency key `symbol:ts:bid:ask` (UTC wire time, normalised prices)."""
        return f"{tick.symbol}:{format_timestamp(tick.ts)}:{_plain(tick.bid)}:{_plain(tick.ask)}"

    # -- batches ----------------------------------------------------------------------------------

    def evaluate(self, raws: Sequence[Any], *, naive_utc: bool = False) -> BatchResult:
        """Decide every raw tick of a batch against the committed state; changes nothing."""
        now = self.clock.now()
        result = BatchResult()
        staged_last: dict[str, int] = {}
        staged_keys: set[str] = set()
        for index, raw in enumerate(raws):
            try:
                tick = self._parse(raw, now, naive_utc)
            except _Invalid as exc:
                result.rejected.append(Rejection(index, exc.reason, exc.detail))
                continue
            key = self.key(tick)
            state = self._symbols.get(tick.symbol)
            if key in staged_keys or (state is not None and key in state.seen):
                result.duplicates.append(index)
                continue
            us = (tick.ts - _EPOCH) // _ONE_US
            last = staged_last.get(tick.symbol, state.last_us if state is not None else None)
            if last is not None and us < last:
                result.rejected.append(Rejection(
                    index, Reason.OUT_OF_ORDER,
                    f"ts {format_timestamp(tick.ts)} is before the last accepted {tick.symbol} tick at "
                    f"{format_timestamp(_EPOCH + last * _ONE_US)}"))
                continue
            staged_last[tick.symbol] = us
            staged_keys.add(key)
            result.accepted.append(tick)
            result.accepted_indices.append(index)
            result._keys.append(key)
        return result

    def commit(self, result: BatchResult) -> None:
        """Record the accepted ticks of an evaluated batch (after they were published)."""
        if result._committed:
            return
        result._committed = True
        horizon = self.clock.now() - self._max_age - self._max_future
        horizon_us = (horizon - _EPOCH) // _ONE_US
        capacity = self.config.dedupe_capacity
        touched: set[str] = set()
        for tick, key in zip(result.accepted, result._keys, strict=True):
            state = self._symbols.get(tick.symbol)
            if state is None:
                state = self._symbols[tick.symbol] = _SymbolState()
            us = (tick.ts - _EPOCH) // _ONE_US
            if state.last_us is None or us >= state.last_us:
                state.last_us = us
                state.latest = tick
            if key not in state.seen:
                state.keys.append((us, key))
                state.seen.add(key)
            touched.add(tick.symbol)
        for symbol in touched:
            state = self._symbols[symbol]
            keys = state.keys
            while keys and (keys[0][0] < horizon_us or len(keys) > capacity):
                state.seen.discard(keys.popleft()[1])

    def ingest(self, raws: Sequence[Any], *, naive_utc: bool = False) -> BatchResult:
        """evaluate + commit, for callers that publish synchronously (backtest, tests)."""
        result = self.evaluate(raws, naive_utc=naive_utc)
        self.commit(result)
        return result

    # -- queries ----------------------------------------------------------------------------------

    def latest(self) -> dict[str, PriceTick]:
        """The last accepted tick of every symbol."""
        return {s: st.latest for s, st in sorted(self._symbols.items()) if st.latest is not None}

    def last_tick_time(self, symbol: str) -> datetime | None:
        state = self._symbols.get(symbol)
        return None if state is None or state.last_us is None else _EPOCH + state.last_us * _ONE_US


