"""signal-generator over a backlog: its bars and vectors are two streams, and the bars' consumer (cheap
handling) runs far ahead of the vectors' (the strategies), by more than the recent closes it keeps
for late vectors. Found by bench/scaleout.py: the vectors met no close and were dropped, so a
catch-up lost signals. The engine now keeps the closes whose vector is still to come."""

from __future__ import annotations

from datetime import UTC, datetime

from eafix.contracts.strategies import load_strategies_text
from eafix.runtime.clock import TestClock
from eafix.signal_generator.domain import SignalEngine
from service.partition_workload import bars_and_vectors, reference
from service.pipeline_env import FIRES_EVERY_BAR


def test_every_vector_meets_its_bar_when_the_bars_ran_600_ahead():
    items = bars_and_vectors(["EURUSD", "USDJPY"], 600, datetime(2026, 11, 2, tzinfo=UTC), seed=3)
    signals, suppressed = reference(items, FIRES_EVERY_BAR)  # bar, vector, bar, vector...
    clock = TestClock(items[-1][0].ts_close)
    engine = SignalEngine(load_strategies_text(FIRES_EVERY_BAR), clock)
    outputs = [o for bar, _ in items for o in engine.on_bar(bar)]  # every bar first: nothing to pair yet
    assert outputs == []
    for _, vector in items:
        assert vector is not None
        clock.advance(60)  # past the duplicate window between two vectors of a symbol
        outputs += engine.on_indicators(vector)
    assert engine.stats["vectors_dropped_waiting"] == 0
    assert sorted(o.signal_id for o in outputs if hasattr(o, "signal_id")) == sorted(signals)
    assert len(outputs) == len(signals) + len(suppressed) and len(signals) > 500
