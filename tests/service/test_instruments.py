"""The one instrument model (eafix.instruments): the table, its overrides, conversions, and the same
pip and contract size in every stage of the pipeline. Expected figures are worked out by hand in
the comments (pip size x contract size x lots x price move, converted at the mids)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from eafix.backtest.collector import Collector
from eafix.contracts import OrderIntent, TradeClosed
from eafix.contracts.messaging import Messenger, counter_ids
from eafix.data_ingestor.domain import TickNormalizer, spread_pips
from eafix.execution_engine.brokers import PaperBroker
from eafix.execution_engine.domain import ExecutionEngine
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.execution_engine.repository import InMemoryExecutionRepository
from eafix.execution_engine.stage import ExecutionStage
from eafix.instruments import DEFAULT_INSTRUMENTS, InstrumentError, QuoteBook
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.stage import RiskStage
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock
from eafix.signal_generator.config import load_strategies_text
from eafix.signal_generator.strategies import stop_pips
from service.factories import T0, signal, tick

# --- the table -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("symbol", "pip", "contract", "digits"), [
    ("EURUSD", "0.0001", "100000", 5),
    ("GBPCHF", "0.0001", "100000", 5),
    ("USDJPY", "0.01", "100000", 3),
    ("EURJPY", "0.01", "100000", 3),
    ("XAUUSD", "0.01", "100", 2),
    ("XAGUSD", "0.001", "5000", 3),
    ("SEKNOK", "0.0001", "100000", 5),  # not listed: the FX rule
    ("TRYJPY", "0.01", "100000", 3),  # not listed, JPY quote
])
def test_built_in_instruments(symbol, pip, contract, digits):
    instrument = DEFAULT_INSTRUMENTS[symbol]
    assert (instrument.pip_size, instrument.contract_size, instrument.price_precision) == (D(pip), D(contract), digits)
    assert (instrument.base, instrument.quote) == (symbol[:3], symbol[3:])


def test_a_symbol_that_is_not_a_pair_is_refused():
    with pytest.raises(InstrumentError, match="not a six-letter currency pair"):
        DEFAULT_INSTRUMENTS["BTC"]


def test_overrides_replace_fields_and_add_symbols():
    table = DEFAULT_INSTRUMENTS.with_overrides({
        "XAUUSD": {"pip_size": 0.1},  # a YAML number: taken by its text, not its binary value
        "BTCUSD": {"pip_size": "1", "contract_size": 1, "price_precision": 2},
    })
    assert table["XAUUSD"].pip_size == D("0.1") and table["XAUUSD"].contract_size == D(100)
    assert table["BTCUSD"].pip_size == D(1) and table["BTCUSD"].contract_size == D(1)
    assert table["EURUSD"] == DEFAULT_INSTRUMENTS["EURUSD"]
    assert DEFAULT_INSTRUMENTS["XAUUSD"].pip_size == D("0.01")  # the built-in table is unchanged


@pytest.mark.parametrize(("overrides", "message"), [
    ({"XAUUSD": {"pip_size": -1}}, "XAUUSD.pip_size: Input should be greater than 0"),
    ({"XAUUSD": {"lots": 1}}, "XAUUSD.lots: Extra inputs are not permitted"),
    ({"XAUUSD": {"min_lot": "0.15", "lot_step": "0.1"}}, "XAUUSD: min_lot (0.15) must be a multiple of lot_step"),
    ({"XAUUSD": {"max_lot": "0.01", "min_lot": "0.02"}}, "XAUUSD: max_lot (0.01) must be >= min_lot (0.02)"),
    ({"XAUUSD": {"lot_step": "0.001"}}, "XAUUSD.lot_step: Decimal input should have no more than 2 decimal places"),
    ({"XAUUSD": {"max_lot": "10000"}}, "XAUUSD.max_lot: Input should be less than 10000"),
    ({"EURUSD": {"pip_size": "0.000001"}}, "EURUSD: pip_size (0.000001) is finer than its price precision"),
    ({"eurusd": {}}, "'eurusd': an instrument symbol is six upper-case letters"),
])
def test_bad_overrides_name_the_symbol_and_field(overrides, message):
    with pytest.raises(InstrumentError) as caught:
        DEFAULT_INSTRUMENTS.with_overrides(overrides)
    assert message in str(caught.value)


# --- conversion --------------------------------------------------------------------------------------


def test_a_cross_and_the_route_through_usd_agree():
    # EURUSD 1.10 and USDJPY 150.00 make EURJPY 165.00; GBPUSD 1.25 makes GBPJPY 187.50
    through_usd = QuoteBook()
    for quote in (tick("EURUSD", "1.10", "1.10"), tick("USDJPY", "150.00", "150.00"), tick("GBPUSD", "1.25", "1.25")):
        through_usd.update(quote)
    direct = QuoteBook()
    for quote in (tick("EURJPY", "165.00", "165.00"), tick("GBPJPY", "187.50", "187.50")):
        direct.update(quote)
    for src, dst, (num, den) in (("EUR", "JPY", (165, 1)), ("JPY", "EUR", (1, 165)), ("GBP", "JPY", (375, 2))):
        for book in (through_usd, direct):
            found_num, found_den = book.rate(src, dst)
            assert found_num * den == num * found_den, (src, dst)  # the same exact fraction
    assert through_usd.convert(D(1), "EUR", "GBP") == D("0.88")  # 1.10 / 1.25, through USD
    assert direct.convert(D(1), "EUR", "GBP") == D("0.88")  # 165 / 187.5, through JPY
    assert direct.rate("EUR", "USD") is None  # no quote links them


def test_conversion_uses_mids_and_an_older_quote_never_replaces_a_newer_one():
    book = QuoteBook()
    book.update(tick("USDJPY", "150.00", "150.02", at=T0))
    book.update(tick("USDJPY", "140.00", "140.02", at=T0 - timedelta(seconds=1)))  # late, ignored
    assert book.rate("USD", "JPY") == (D("300.02"), D(2))  # mid 150.01 as an exact fraction
    assert book.convert(D("150.01"), "JPY", "USD") == D(1)


@pytest.mark.parametrize(("symbol", "quotes", "expected"), [
    ("EURUSD", [], D(10)),  # 0.0001 x 100,000 USD
    ("XAUUSD", [], D(1)),  # 0.01 x 100 oz
    ("XAGUSD", [], D(5)),  # 0.001 x 5,000 oz
    ("USDJPY", [("USDJPY", "125.00", "125.00")], D(8)),  # 0.01 x 100,000 = 1,000 JPY at 125
    ("EURGBP", [("GBPUSD", "1.25", "1.25")], D("12.5")),  # 10 GBP at 1.25
])
def test_pip_value_per_lot_in_usd(symbol, quotes, expected):
    book = QuoteBook()
    for s, bid, ask in quotes:
        book.update(tick(s, bid, ask))
    num, den = book.pip_value_per_lot(DEFAULT_INSTRUMENTS[symbol], "USD")
    assert num / den == expected


# --- one tick per symbol through the five stages -------------------------------------------------------

# symbol: (entry quote, closing quote at the take-profit, ATR in price units)
WALK = {
    "EURUSD": (("1.10000", "1.10010"), ("1.10410", "1.10420"), "0.0010"),
    "USDJPY": (("150.000", "150.020"), ("150.420", "150.440"), "0.10"),
    "XAUUSD": (("2000.00", "2000.04"), ("2000.44", "2000.48"), "0.10"),
}
# what each stage must find, worked out by hand: 2 % of the balance at risk, SL 20 pips, TP 40; the
# balance starts at 10,000 USD and each trade's P&L adds to it before the next symbol is sized
EXPECTED = {
    #          spread pips, stop pips from ATR x 1.5, lots, trade pips, P&L USD
    # 200 USD / (20 pips x 10 USD) = 1.00 lot; 0.0040 x 1 x 100,000 = 400 USD
    "EURUSD": (D("1"), D("15.0"), D("1.00"), D("40.0"), D("400.00")),
    # pip value 1,000 JPY / 150.01 = 6.666222 USD; 208 / (20 x 6.666222) = 1.5601 -> 1.56 lots;
    # 0.400 x 1.56 x 100,000 = 62,400 JPY at the closing mid 150.43 = 414.81 USD
    "USDJPY": (D("2"), D("15.0"), D("1.56"), D("40.0"), D("414.81")),
    # pip value 0.01 x 100 oz = 1 USD; 216.2962 / 20 = 10.81 lots; 0.40 x 10.81 x 100 = 432.40 USD
    "XAUUSD": (D("4"), D("15.0"), D("10.81"), D("40.0"), D("432.40")),
}


@pytest.mark.anyio
async def test_every_stage_agrees_on_pips_and_contract_size():
    clock = TestClock(T0)
    bus = InMemoryBus()
    ids = counter_ids()

    def messenger(producer: str) -> Messenger:
        return Messenger(bus, producer, clock, in_process=True, ids=ids)

    risk = RiskStage(RiskEngine(RiskConfig(correlated_pairs=(), currency_exposure_cap_percent=D(100),
                                           max_open_positions=10), clock), messenger("risk-manager"))
    engine = ExecutionEngine(clock, PaperBroker(), record_changes=False)
    execution = ExecutionStage(ExecutionGateway(engine, InMemoryExecutionRepository(), messenger("execution-engine")))
    collector = Collector((OrderIntent.TOPIC, TradeClosed.TOPIC))
    for stage in (risk, execution, collector):
        stage.subscribe(bus)
    feed = messenger("feed")
    ingest = TickNormalizer(clock)
    strategy = load_strategies_text("version: 1\nstrategies:\n  x: {type: ma_crossover}\n").strategies[0]

    for n, (symbol, ((bid, ask), (close_bid, close_ask), atr)) in enumerate(WALK.items()):
        spread, stop, lots, pips, pnl = EXPECTED[symbol]
        instrument = DEFAULT_INSTRUMENTS[symbol]
        # data-ingestor: the raw quote is accepted and its spread is in this symbol's pips
        result = ingest.ingest([{"symbol": symbol, "ts": T0.isoformat(), "bid": bid, "ask": ask}])
        accepted = result.accepted[0]
        assert spread_pips(instrument, accepted.bid, accepted.ask) == spread
        # signal-generator: the ATR stop in pips
        assert stop_pips(strategy, instrument, float(atr)) == stop
        # risk-manager sizes, execution-engine fills at the ask and closes at the take-profit
        await feed.publish([accepted, signal(f"SIG-{n}", symbol=symbol, entry=ask)])
        await bus.drain()
        order = collector.events[OrderIntent.TOPIC][-1]
        assert (order.symbol, order.lots) == (symbol, lots)
        await feed.publish([tick(symbol, close_bid, close_ask, at=T0 + timedelta(seconds=1))])
        await bus.drain()
        trade = collector.events[TradeClosed.TOPIC][-1]
        assert (trade.symbol, trade.pips, trade.pnl) == (symbol, pips, pnl)
    assert len(collector.events[TradeClosed.TOPIC]) == len(WALK)
