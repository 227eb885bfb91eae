"""NautilusTrader's side of `make bench-peers`: the SMA(10, 20) cross, stop-and-reverse, on the same
EURUSD H1 CSV that compare.py has backtesting.py write. Runs inside its own virtualenv (nautilus_trader
from PyPI; compare.py makes it), never with EAFIX imported. Prints one JSON line: bars, the seconds
of `engine.run()` alone (data already loaded and wrangled, as for the other two tools), entries.

NautilusTrader stamps a bar with its close time (the CSV has open times, so they are moved one hour
on), and a market order placed in `on_bar` fills in its bar-driven simulated venue at that bar's
close, which is the next bar's open: the time and price backtesting.py and `eafix backtest` fill at.
Each entry is recorded from its fill (time and side), so the three tools' entries can be compared.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.indicators import SimpleMovingAverage
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide, PositionSide
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.wranglers import BarDataWrangler
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy, StrategyConfig

VENUE = Venue("SIM")


class SmaCrossConfig(StrategyConfig, frozen=True):
    bar_type: str
    fast: int = 10
    slow: int = 20


class SmaCross(Strategy):
    def __init__(self, config: SmaCrossConfig) -> None:
        super().__init__(config)
        self.bar_type = BarType.from_str(config.bar_type)
        self.fast = SimpleMovingAverage(config.fast)
        self.slow = SimpleMovingAverage(config.slow)
        self.previous: float | None = None  # fast - slow on the previous bar
        self.entries: list[list[str]] = []

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.bar_type.instrument_id)
        self.register_indicator_for_bars(self.bar_type, self.fast)
        self.register_indicator_for_bars(self.bar_type, self.slow)
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not self.slow.initialized:
            return
        spread, previous = self.fast.value - self.slow.value, self.previous
        self.previous = spread
        if previous is None or (previous <= 0) == (spread <= 0) or spread == 0:
            return  # no cross on this bar
        side = OrderSide.BUY if spread > 0 else OrderSide.SELL
        position = self.cache.positions_open(instrument_id=self.instrument.id)
        if position and position[0].side == (PositionSide.LONG if spread > 0 else PositionSide.SHORT):
            return
        self.close_all_positions(self.instrument.id)
        self.submit_order(self.order_factory.market(self.instrument.id, side,
                                                    self.instrument.make_qty(10_000)))

    def on_position_opened(self, event) -> None:
        opened = pd.Timestamp(event.ts_event, unit="ns", tz="UTC")
        self.entries.append([f"{opened:%Y-%m-%dT%H:%M:%SZ}", "LONG" if event.side == PositionSide.LONG else "SHORT"])


def main(csv_path: str) -> None:
    frame = pd.read_csv(csv_path, parse_dates=["timestamp"], index_col="timestamp")
    frame.index = frame.index + pd.Timedelta(hours=1)  # open time -> close time, NautilusTrader's stamp
    instrument = TestInstrumentProvider.default_fx_ccy("EUR/USD", VENUE)
    bar_type = BarType.from_str(f"{instrument.id}-1-HOUR-MID-EXTERNAL")
    bars = BarDataWrangler(bar_type, instrument).process(frame)
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(venue=VENUE, oms_type=OmsType.NETTING, account_type=AccountType.MARGIN, base_currency=USD,
                     starting_balances=[Money(1_000_000, USD)])
    engine.add_instrument(instrument)
    engine.add_data(bars)
    strategy = SmaCross(SmaCrossConfig(bar_type=str(bar_type)))
    engine.add_strategy(strategy)
    started = time.perf_counter()
    engine.run()
    elapsed = time.perf_counter() - started
    print(json.dumps({"bars": len(bars), "seconds": elapsed, "entries": strategy.entries}))
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
