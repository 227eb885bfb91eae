"""Property tests of data-ingestor's intake: the tick batch validation (`eafix.data_ingestor.domain.
TickNormalizer.evaluate`, behind `POST /api/v1/ticks` and the bridge) and the MT4 CSV price bridge's
file parser and writer (`eafix.data_ingestor.mt4_bridge.parse_bridge_csv`, `render_bridge_csv`,
`row_checksum`).

Covered: a batch of anything (objects, lists, numbers, text) never raises: every index is accepted,
rejected or a duplicate, exactly once; a valid tick with one field made near-valid is accepted or
rejected with a reason of that field's rules; valid ticks come out with the exact Decimal prices and
the UTC time sent. Any text, and a rendered bridge file with one character mutated, parses to a
ParsedFile (whole-file error or per-row rejections), never an exception; rendered files parse back
to the same cells and file_seq; one changed cell rejects that row only, as a checksum mismatch
naming its data row and file line.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from eafix.contracts import PriceTick
from eafix.contracts.primitives import format_timestamp
from eafix.data_ingestor.domain import Reason, TickNormalizer
from eafix.data_ingestor.mt4_bridge import parse_bridge_csv, render_bridge_csv
from eafix.runtime.clock import TestClock
from service.property_strategies import fuzz_text, mutated, near_numbers

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | fuzz_text | near_numbers,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(fuzz_text, inner, max_size=3), max_leaves=8)
fields = st.sampled_from(["symbol", "ts", "bid", "ask", "volume"])
# the reasons a broken field may produce (a symbol or price that is valid but different moves the spread)
SPREAD = {Reason.SPREAD_BELOW_MIN, Reason.SPREAD_ABOVE_MAX}
REASONS = {
    "symbol": {Reason.SYMBOL_INVALID} | SPREAD,
    "ts": {Reason.TS_INVALID, Reason.STALE, Reason.IN_FUTURE},
    "bid": {Reason.BID_INVALID, Reason.ASK_BELOW_BID} | SPREAD,
    "ask": {Reason.ASK_INVALID, Reason.ASK_BELOW_BID} | SPREAD,
    "volume": {Reason.VOLUME_INVALID},
}


@st.composite
def valid_ticks(draw: st.DrawFn) -> dict[str, object]:
    """An EURUSD quote within the age and spread limits, prices as text with up to 5 decimals."""
    bid = draw(st.decimals(Decimal("0.5"), Decimal("2"), places=5))
    spread = draw(st.integers(1, 1000)) * Decimal("0.00001")  # 0.1 to 100 pips
    age = timedelta(microseconds=draw(st.integers(-5_000_000, 30_000_000)))
    return {"symbol": draw(st.sampled_from(["EURUSD", " eurusd "])), "ts": format_timestamp(NOW - age),
            "bid": str(bid), "ask": str(bid + spread), "volume": draw(st.none() | st.integers(0, 10**6))}


def partition(result, size: int) -> list[int]:
    return sorted(result.accepted_indices + [r.index for r in result.rejected] + result.duplicates)


@given(st.lists(json_values | st.dictionaries(fields, json_values), max_size=6), st.booleans())
def test_any_batch_is_decided_index_by_index(batch, naive_utc) -> None:
    result = TickNormalizer(TestClock(NOW)).evaluate(batch, naive_utc=naive_utc)
    assert partition(result, len(batch)) == list(range(len(batch)))
    assert all(r.detail for r in result.rejected)


@given(valid_ticks(), fields, json_values | near_numbers | fuzz_text)
def test_a_broken_field_is_rejected_for_that_field(tick, field, value) -> None:
    tick[field] = value
    result = TickNormalizer(TestClock(NOW)).evaluate([tick])
    assert partition(result, 1) == [0]
    if result.rejected:
        assert result.rejected[0].reason in REASONS[field], (field, value, result.rejected[0])


@given(st.lists(json_values | st.dictionaries(fields, json_values), max_size=6)
       | st.lists(valid_ticks(), max_size=3), valid_ticks(), fields, json_values | near_numbers | fuzz_text,
       st.booleans())
def test_an_accepted_tick_is_what_the_contract_accepts(batch, tick, field, value, naive_utc) -> None:
    # the normaliser builds its PriceTick without pydantic's validation: whatever it accepts, validating
    # its wire form (what a consumer does at its boundary) accepts, with the same values
    tick[field] = value
    result = TickNormalizer(TestClock(NOW)).evaluate([*batch, tick], naive_utc=naive_utc)
    for accepted in result.accepted:
        assert PriceTick.model_validate_json(accepted.model_dump_json()) == accepted
        assert accepted.ts.tzinfo is UTC and accepted.ts == PriceTick.model_validate(accepted.model_dump()).ts


@given(st.lists(valid_ticks(), min_size=1, max_size=6))
def test_valid_ticks_keep_their_exact_values(ticks) -> None:
    ticks.sort(key=lambda t: datetime.fromisoformat(str(t["ts"])))
    result = TickNormalizer(TestClock(NOW)).evaluate(ticks)
    assert not result.rejected
    for index, tick in zip(result.accepted_indices, result.accepted, strict=True):
        sent = ticks[index]
        assert (tick.symbol, tick.bid, tick.ask, tick.volume) == ("EURUSD", Decimal(str(sent["bid"])),
                                                                  Decimal(str(sent["ask"])), sent["volume"])
        assert format_timestamp(tick.ts) == sent["ts"]


cells = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12).map(str.strip)
bridge_rows = st.lists(st.fixed_dictionaries({"ts": cells, "symbol": cells, "bid": cells, "ask": cells},
                                             optional={"volume": cells}), min_size=1, max_size=5)


def file_lines(text: str) -> list[int]:
    """The line where each data record starts, counted the way a CSV reader does (\\r\\n, \\r, \\n)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, start = [], 1
    for cells_ in reader:
        if any(c.strip() for c in cells_):
            starts.append(start)
        start = reader.line_num + 1
    return starts[1:]


@given(fuzz_text | mutated(st.builds(render_bridge_csv, st.integers(1, 10**6), bridge_rows)))
def test_any_text_parses_to_a_report(text) -> None:
    parsed = parse_bridge_csv(text)
    if parsed.error is None:
        numbers = sorted([r.row for r in parsed.rows] + [r.row for r in parsed.rejected])
        assert numbers == list(range(1, parsed.data_rows + 1))
    else:
        assert parsed.error


@given(st.integers(1, 10**12), bridge_rows)
def test_rendered_files_parse_back(file_seq, rows) -> None:
    text = render_bridge_csv(file_seq, rows)
    parsed = parse_bridge_csv(text)
    assert parsed.error is None and not parsed.rejected
    assert parsed.file_seq == file_seq
    assert [{k: p.fields[k] for k in r} for p, r in zip(parsed.rows, rows, strict=True)] == rows
    assert [p.line for p in parsed.rows] == file_lines(text)


@given(st.integers(1, 10**6), bridge_rows, st.data())
def test_a_changed_cell_rejects_its_row(file_seq, rows, data) -> None:
    """A cell changed after the checksum was computed (a corrupted transfer) rejects that row only."""
    records = list(csv.reader(io.StringIO(render_bridge_csv(file_seq, rows), newline="")))
    index = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from([c for c in records[0] if c != "checksum_sha256"]))
    cell = records[0].index(column)
    records[index + 1][cell] = data.draw(cells.filter(lambda v, old=records[index + 1][cell]: v != old))
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(records)
    text = out.getvalue()
    parsed = parse_bridge_csv(text)
    assert parsed.error is None
    line = file_lines(text)[index]
    assert [(r.row, r.line, r.reason) for r in parsed.rejected] == [(index + 1, line, "checksum_mismatch")]
    assert [p.row for p in parsed.rows] == [n + 1 for n in range(len(rows)) if n != index]
