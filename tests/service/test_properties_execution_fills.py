"""Property tests of execution-engine's MT4 bridge fills intake (`eafix.execution_engine.mt4_bridge.
MT4FileBridge.poll_fills` and its per-file parser, the EA's answers) and the CSV writer both sides use
(`encode_csv`, `row_checksum`).

Covered: any bytes as a fills file, and a valid file with one character mutated, are taken or
quarantined with a reason (never an exception out of the poll); a refused row is named by its line;
fills written with `encode_csv` and checksummed come back as the same events with the exact Decimal
lots, price and commission.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eafix.contracts.primitives import format_timestamp
from eafix.execution_engine.domain import Filled
from eafix.execution_engine.mt4_bridge import FILL_COLUMNS, FillsFileError, MT4FileBridge, encode_csv, row_checksum
from eafix.runtime.clock import TestClock
from service.property_strategies import fuzz_bytes, mutated

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:~-]{0,20}", fullmatch=True)


@st.composite
def fill_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    file_seq = str(draw(st.integers(1, 10**9)))
    rows = []
    for n in range(draw(st.integers(1, 5))):
        row = {
            "file_seq": file_seq,
            "timestamp": format_timestamp(T0 + timedelta(microseconds=draw(st.integers(0, 10**12)))),
            "client_order_id": draw(ids), "ticket": draw(ids), "status": draw(st.sampled_from(["FILLED", "PARTIAL"])),
            "fill_id": f"F{n}-{draw(ids)}",
            "lots": str(draw(st.decimals(Decimal("0.01"), Decimal("100"), places=2))),
            "price": str(draw(st.decimals(Decimal("0.00001"), Decimal("99999"), places=5))),
            "commission": str(draw(st.decimals(Decimal("0"), Decimal("100"), places=2))),  # a cost, >= 0
            "close_reason": "", "reason": "",
        }
        row["checksum_sha256"] = row_checksum(row)
        rows.append(row)
    return rows


def poll(data: bytes):
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        bridge = MT4FileBridge(root / "orders", root / "fills", root / "state.json", TestClock(T0))
        (root / "fills" / "fills_1.csv").write_bytes(data)
        batch = bridge.poll_fills()
        reasons = [(p.with_name(p.name + ".reason.txt")).read_text() for p in batch.quarantined]
        return batch, reasons


@pytest.fixture(scope="module")
def bridge():
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        yield MT4FileBridge(root / "orders", root / "fills", root / "state.json", TestClock(T0))


@given(fuzz_bytes | mutated(fill_rows().map(lambda rows: encode_csv(FILL_COLUMNS, rows).decode())).map(str.encode))
@example((",".join(FILL_COLUMNS) + "\n1," + "a" * 200_000 + "\n").encode())  # was a raw csv.Error out of the poll
def test_any_fills_file_parses_or_raises_fills_file_error(bridge, data) -> None:
    path = bridge.fills_dir / "fills_fuzz.csv"
    path.write_bytes(data)
    try:
        bridge._parse_fills(path)  # the poll's parser: poll_fills quarantines on FillsFileError
    except FillsFileError as exc:
        message = str(exc)
        assert message
        if re.match(r"line \d+", message):
            assert int(message.split()[1].rstrip(":")) >= 1


@settings(max_examples=15)  # each example moves and fsyncs files
@given(fuzz_bytes | mutated(fill_rows().map(lambda rows: encode_csv(FILL_COLUMNS, rows).decode())).map(str.encode))
def test_the_poll_takes_or_quarantines_any_file(data) -> None:
    batch, reasons = poll(data)
    assert len(batch.files) + len(batch.quarantined) == 1
    assert all(reason.strip() for reason in reasons)


def parse(bridge: MT4FileBridge, data: bytes):
    path = bridge.fills_dir / "fills_case.csv"
    path.write_bytes(data)
    return bridge._parse_fills(path)


@given(fill_rows())
def test_written_fills_come_back_exactly(bridge, rows) -> None:
    file_seq, events = parse(bridge, encode_csv(FILL_COLUMNS, rows))
    assert file_seq == int(rows[0]["file_seq"])
    assert [(e.client_order_id, e.fill_id, e.lots, e.price, e.commission, e.ts, e.broker_order_id)
            for e in events if isinstance(e, Filled)] == [
        (r["client_order_id"], r["fill_id"], Decimal(r["lots"]), Decimal(r["price"]), Decimal(r["commission"]),
         datetime.fromisoformat(r["timestamp"]), r["ticket"]) for r in rows]


@given(fill_rows(), st.data())
def test_a_bad_row_is_refused_naming_its_line(bridge, rows, data) -> None:
    index = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from(["timestamp", "lots", "price", "status", "client_order_id"]))
    rows[index][column] = data.draw(st.sampled_from(["", "x", "-1", "1e3", "NaN", "2025-13-01T00:00:00Z", "1.123"]))
    rows[index]["checksum_sha256"] = row_checksum(rows[index])  # a well-formed row with a bad value
    try:
        parse(bridge, encode_csv(FILL_COLUMNS, rows))
    except FillsFileError as exc:
        assert str(exc).startswith(f"line {index + 2}: "), str(exc)
