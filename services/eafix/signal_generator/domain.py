"""Signal-generator domain: SignalEngine turns indicator vectors into Signal / SignalSuppressed.

Pure: no I/O, no wall clock (the injected Clock gives "now"), no logging per event. Inputs:

    on_bar(Bar)                      the bar close (entry price, Bollinger breakout) per symbol/timeframe
    on_indicators(IndicatorVector)   -> list[Signal | SignalSuppressed]
    on_risk_off(SystemRiskOff)       active=true latches risk-off; active=false is the explicit release
    reset_risk_off()                 the operator's explicit reset (POST /api/v1/risk-off/reset)

IndicatorVector carries no price, so the engine pairs each vector with the Bar of the same
symbol/timeframe/close time. Bars and vectors travel on different streams; whichever arrives second
triggers the evaluation. Vectors waiting for their bars (a backlog after an outage may bring the
vectors of several bars before those bars) are evaluated in time order as the bars come, none
skipped, so a catch-up trades what a replay trades; closes ahead of their vectors are kept too (up to
_AHEAD_KEPT: over a backlog the bars' consumer runs far ahead); at most _WAITING_KEPT wait per symbol/timeframe
(the oldest beyond that is dropped, counted), and a vector whose bar was passed by a later one is
dropped (counted) rather than holding the others back. A vector not newer than the last one evaluated for its
symbol/timeframe is ignored (redelivery, out of order), so strategy state advances once per bar.

Gates, in order, for every strategy that triggers on a vector:

    1. RISK_OFF                 the risk-off latch is set (until an explicit release/reset)
    2. CALENDAR_BLACKOUT        the BlackoutGate (calendar-ingestor's gates) blocks the symbol at the bar time
    3. NEUTRAL_BIAS             the trigger has no clear direction: suppressed, never mapped to LONG
    4. LOW_CONFIDENCE           confidence < min_confidence (equal passes)
    5. DUPLICATE_WITHIN_WINDOW  a Signal for the same symbol/strategy/direction was emitted at most
                                duplicate_window_seconds (300) ago by the clock (300 s: suppressed,
                                301 s: emitted); suppressed outputs do not restart the window
    6. Signal                   signal_id = SIG-<bar close>Z-<symbol><timeframe>-<L|S>-<strategy hash>:
                                the same bar and strategy always give the same id (replay, redelivery)
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from eafix.contracts import (
    Bar,
    Direction,
    IndicatorVector,
    Signal,
    SignalSuppressed,
    SuppressionReason,
    SystemRiskOff,
)
from eafix.contracts.calendar import BlackoutGate
from eafix.instruments import DEFAULT_INSTRUMENTS, Instruments
from eafix.runtime.clock import Clock
from eafix.signal_generator.config import SignalGeneratorConfig
from eafix.signal_generator.strategies import Candidate, Strategy, build_strategies, stop_pips, take_profit_pips

__all__ = ["Output", "RiskOffState", "SignalEngine", "signal_id_for"]

Output = Signal | SignalSuppressed
_DETAIL_MAX = 500  # SignalSuppressed.detail maxLength
_BARS_KEPT = 256  # recent closes kept per symbol/timeframe (to meet late vectors, a backlog's too)
# closes whose vector is still to come are kept beyond that, up to this many: over a backlog the bars'
# consumer runs ahead of the vectors' (their handling is cheap), by far more than _BARS_KEPT
_AHEAD_KEPT = 10_000
_WAITING_KEPT = 256  # vectors waiting for their bars per symbol/timeframe


@dataclass(frozen=True, slots=True)
class RiskOffState:
    reason: str
    source: str
    since: datetime


def signal_id_for(ts: datetime, symbol: str, timeframe: str, direction: Direction, strategy_tag: str) -> str:
    stamp = ts.strftime("%Y%m%dT%H%M%S") + (f".{ts.microsecond:06d}" if ts.microsecond else "")
    return f"SIG-{stamp}Z-{symbol}{timeframe}-{direction.value[0]}-{strategy_tag}"


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 3] + "..."


class SignalEngine:
    """Configured strategies + gates. `recent_limit` bounds the in-memory list of recent outputs."""

    def __init__(self, config: SignalGeneratorConfig, clock: Clock, *, instruments: Instruments = DEFAULT_INSTRUMENTS,
                 blackout: BlackoutGate | None = None, recent_limit: int = 500) -> None:
        self._config = config
        self._instruments = instruments
        self._clock = clock
        self._blackout = blackout
        self._strategies: tuple[Strategy, ...] = build_strategies(config)
        self._closes: dict[tuple[str, str], OrderedDict[datetime, Decimal]] = {}
        self._pending: dict[tuple[str, str], OrderedDict[datetime, IndicatorVector]] = {}
        self._last_ts: dict[tuple[str, str], datetime] = {}
        self._last_emitted: dict[tuple[str, str, Direction], datetime] = {}
        self._risk_off: RiskOffState | None = None
        self._recent: deque[Output] = deque(maxlen=recent_limit)
        self.stats: dict[str, int] = {"vectors": 0, "signals": 0, "suppressed": 0, "stale_vectors": 0,
                                      "vectors_dropped_waiting": 0}

    # -- state ---------------------------------------------------------------------------------

    @property
    def config(self) -> SignalGeneratorConfig:
        return self._config

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        return self._strategies

    @property
    def risk_off(self) -> RiskOffState | None:
        return self._risk_off

    def recent(self, limit: int | None = None, *, symbol: str | None = None) -> list[Output]:
        """Most recent outputs first."""
        out: list[Output] = []
        for item in reversed(self._recent):
            if symbol is None or item.symbol == symbol:
                out.append(item)
                if limit is not None and len(out) >= limit:
                    break
        return out

    # -- risk-off ------------------------------------------------------------------------------

    def on_risk_off(self, event: SystemRiskOff) -> None:
        """active=true latches (a repeated latch keeps the first time); active=false is an explicit
        release (the schema: "released (explicit reset)"), e.g. an operator reset relayed on the bus."""
        if event.active:
            if self._risk_off is None:
                self._risk_off = RiskOffState(event.reason, event.source, self._clock.now())
        else:
            self._risk_off = None

    def reset_risk_off(self) -> RiskOffState | None:
        """Release the latch; returns the state that was active (None if none was)."""
        previous, self._risk_off = self._risk_off, None
        return previous

    # -- market data ---------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> list[Output]:
        key = (bar.symbol, bar.timeframe.value)
        closes = self._closes.get(key)
        if closes is None:
            closes = self._closes[key] = OrderedDict()
        closes[bar.ts_close] = bar.close
        evaluated = self._last_ts.get(key)
        while len(closes) > _BARS_KEPT and (len(closes) > _AHEAD_KEPT or (
                evaluated is not None and next(iter(closes)) <= evaluated)):
            closes.popitem(last=False)
        return self._evaluate_waiting(key)

    def on_indicators(self, vector: IndicatorVector) -> list[Output]:
        self.stats["vectors"] += 1
        key = (vector.symbol, vector.timeframe.value)
        last = self._last_ts.get(key)
        if last is not None and vector.ts <= last:
            self.stats["stale_vectors"] += 1
            return []
        waiting = self._pending.setdefault(key, OrderedDict())
        newest = next(reversed(waiting), None)
        waiting[vector.ts] = vector
        if newest is not None and newest > vector.ts:  # arrived out of time order
            self._pending[key] = waiting = OrderedDict(sorted(waiting.items()))
        while len(waiting) > _WAITING_KEPT:
            waiting.popitem(last=False)
            self.stats["vectors_dropped_waiting"] += 1
        return self._evaluate_waiting(key)

    def _evaluate_waiting(self, key: tuple[str, str]) -> list[Output]:
        """Evaluate the waiting vectors, oldest first, while their bars are known."""
        waiting = self._pending.get(key)
        closes = self._closes.get(key)
        outputs: list[Output] = []
        while waiting and closes:
            ts, vector = next(iter(waiting.items()))
            close = closes.get(ts)
            if close is None:
                if next(reversed(closes)) < ts:
                    break  # its bar is still to come (bars arrive in time order)
                del waiting[ts]  # a later bar came and its own did not: it never will
                self.stats["vectors_dropped_waiting"] += 1
                continue
            del waiting[ts]
            outputs.extend(self._evaluate(vector, close))
        return outputs

    # -- evaluation ----------------------------------------------------------------------------

    def _evaluate(self, vector: IndicatorVector, close: Decimal) -> list[Output]:
        symbol, timeframe = vector.symbol, vector.timeframe.value
        self._last_ts[(symbol, timeframe)] = vector.ts
        outputs: list[Output] = []
        for strategy in self._strategies:
            if not strategy.applies(symbol, timeframe):
                continue
            candidate = strategy.evaluate(vector, close)
            if candidate is not None:
                outputs.append(self._gate(strategy, vector, close, candidate))
        self._recent.extend(outputs)
        return outputs

    def gate(self, strategy: Strategy, vector: IndicatorVector, close: Decimal, candidate: Candidate) -> Output:
        """The gates on a candidate found elsewhere (the backtest's batch path evaluates the strategies
        over the whole series at once); `vector` needs symbol, timeframe, ts and values.atr_14."""
        output = self._gate(strategy, vector, close, candidate)
        self._recent.append(output)
        return output

    def _suppress(self, strategy: Strategy, vector: IndicatorVector, reason: SuppressionReason,
                  candidate: Candidate, detail: str, *, with_direction: bool = True) -> SignalSuppressed:
        self.stats["suppressed"] += 1
        return SignalSuppressed(symbol=vector.symbol, timeframe=vector.timeframe, strategy=strategy.name,
                                reason=reason, direction=candidate.direction if with_direction else None,
                                confidence=candidate.confidence, detail=_clip(detail), ts=vector.ts)

    def _gate(self, strategy: Strategy, vector: IndicatorVector, close: Decimal, candidate: Candidate) -> Output:
        resolved = strategy.resolved
        if self._risk_off is not None:
            state = self._risk_off
            return self._suppress(strategy, vector, SuppressionReason.RISK_OFF, candidate,
                                  f"system risk-off latched by {state.source}: {state.reason}")
        if self._blackout is not None:
            blocked = self._blackout.blackout(vector.symbol, vector.ts)
            if blocked:
                return self._suppress(strategy, vector, SuppressionReason.CALENDAR_BLACKOUT, candidate, blocked)
        direction = candidate.direction
        if direction is None:
            return self._suppress(strategy, vector, SuppressionReason.NEUTRAL_BIAS, candidate, candidate.detail,
                                  with_direction=False)
        if candidate.confidence < resolved.min_confidence:
            return self._suppress(strategy, vector, SuppressionReason.LOW_CONFIDENCE, candidate,
                                  f"confidence {candidate.confidence:.4f} < {resolved.min_confidence}; "
                                  f"{candidate.detail}")
        now = self._clock.now()
        key = (vector.symbol, strategy.name, direction)
        last = self._last_emitted.get(key)
        if last is not None and (now - last).total_seconds() <= resolved.duplicate_window_seconds:
            return self._suppress(strategy, vector, SuppressionReason.DUPLICATE_WITHIN_WINDOW, candidate,
                                  f"{direction.value} {vector.symbol} {strategy.name} emitted "
                                  f"{(now - last).total_seconds():g} s ago (window "
                                  f"{resolved.duplicate_window_seconds:g} s)")
        sl = stop_pips(resolved, self._instruments[vector.symbol], vector.values.atr_14)
        signal = Signal(
            signal_id=signal_id_for(vector.ts, vector.symbol, vector.timeframe.value, direction, strategy.tag),
            symbol=vector.symbol,
            timeframe=vector.timeframe,
            strategy=strategy.name,
            direction=direction,
            confidence=float(round(candidate.confidence, 6)),
            source_indicators=candidate.indicators,
            entry_price=close,
            sl_pips=sl,
            tp_pips=take_profit_pips(resolved, sl),
            ts=vector.ts,
            reverse=True if resolved.params.stop_and_reverse else None,
        )
        self._last_emitted[key] = now
        self.stats["signals"] += 1
        return signal
