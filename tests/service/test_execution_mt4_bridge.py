"""execution-engine MT4 file bridge: atomic orders files, persisted file_seq, validated/quarantined fills."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from eafix.contracts import ExecutionReport, OrderIntent, TradeClosed
from eafix.contracts.primitives import CloseReason, ExecutionStatus
from eafix.execution_engine import mt4_bridge
from eafix.execution_engine.domain import Acknowledged, Closed, ExecutionEngine, Filled, Rejected
from eafix.execution_engine.mt4_bridge import BridgeStateError, MT4Broker, MT4FileBridge
from eafix.runtime.clock import TestClock
from service.factories import intent

S = ExecutionStatus
T0 = datetime(2025, 1, 6, 12, 0, 5, tzinfo=UTC)
FILL_HEADER = ["file_seq", "checksum_sha256", "timestamp", "client_order_id", "ticket", "status", "fill_id", "lots",
               "price", "commission", "close_reason", "reason"]


def independent_checksum(row: dict[str, str]) -> str:
    """The contract's rule, written again here: values of the other columns, alphabetical by name, '|'."""
    keys = sorted(k for k in row if k != "checksum_sha256")
    return hashlib.sha256("|".join(row[k] for k in keys).encode("utf-8")).hexdigest()


def order(n: int = 1, **fields) -> OrderIntent:
    """An intent of half a lot at this module's entry price."""
    return intent(n, lots="0.50", entry="1.03437", **fields)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def ea_fills(directory: Path, name: str, seq: int, rows: list[dict[str, str]], *, corrupt: bool = False) -> Path:
    """What the EA writes: complete rows with file_seq, timestamp and checksum."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FILL_HEADER, lineterminator="\n")
    writer.writeheader()
    for values in rows:
        row = {k: "" for k in FILL_HEADER} | {"file_seq": str(seq), "timestamp": "2025-01-06T12:00:10Z"} | values
        row["checksum_sha256"] = independent_checksum(row)
        if corrupt:
            row["price"] = "1.99999"  # changed after the checksum was taken
        writer.writerow(row)
    path = directory / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"orders_dir": tmp_path / "to_ea", "fills_dir": tmp_path / "from_ea", "state_path": tmp_path / "state.json"}


def new_bridge(dirs: dict[str, Path], clock: TestClock | None = None) -> MT4FileBridge:
    return MT4FileBridge(clock=clock or TestClock(T0), **dirs)


# --- orders out ---------------------------------------------------------------------------------------------

def test_orders_file_is_complete_with_checksums(dirs):
    clock = TestClock(T0)
    broker, bridge = MT4Broker(), new_bridge(dirs, clock)
    engine = ExecutionEngine(clock, broker)
    reports = engine.on_order_intent(order(1))
    assert [r.status for r in reports] == [S.PENDING, S.SUBMITTED]  # the EA has not answered yet
    path = bridge.flush(broker)
    assert path.name == "orders_20250106_120005_00000001.csv"
    [row] = read_csv(path)
    assert row == {
        "file_seq": "1", "checksum_sha256": row["checksum_sha256"], "timestamp": "2025-01-06T12:00:05Z",
        "action": "OPEN", "client_order_id": "O-20250106T120000Z-000001", "ticket": "", "symbol": "EURUSD",
        "direction": "LONG", "lots": "0.50", "sl_pips": "20", "tp_pips": "40", "entry_price": "1.03437",
        "comment": "O-20250106T120000Z-000001",
    }
    assert row["checksum_sha256"] == independent_checksum(row)
    assert broker.outbox() == []
    assert bridge.flush(broker) is None  # nothing new, no empty file
    assert sorted(p.name for p in dirs["orders_dir"].iterdir()) == [path.name]


def test_write_is_temp_fsync_rename(dirs, monkeypatch):
    broker, bridge = MT4Broker(), new_bridge(dirs)
    engine = ExecutionEngine(TestClock(T0), broker)
    engine.on_order_intent(order(1))
    engine.on_order_intent(order(2, direction="SHORT"))
    calls: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace
    orders_dir = dirs["orders_dir"]

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            calls.append(("fsync-dir", None))
        else:
            # at the file's fsync the final name must not exist yet; the temp file holds every row
            finals = sorted(p.name for p in orders_dir.glob("orders_*.csv"))
            temps = sorted(orders_dir.glob("orders_*.csv.tmp"))
            complete = None
            if temps:
                rows = read_csv(temps[0])
                complete = len(rows) == 2 and all(r["checksum_sha256"] == independent_checksum(r) for r in rows)
            calls.append(("fsync-file", (finals, len(temps), complete)))
        real_fsync(fd)

    def replace(src, dst) -> None:
        calls.append(("replace", (Path(src).name, Path(dst).name)))
        real_replace(src, dst)

    monkeypatch.setattr(mt4_bridge.os, "fsync", fsync)
    monkeypatch.setattr(mt4_bridge.os, "replace", replace)
    path = bridge.flush(broker)
    kinds = [c[0] for c in calls]
    # the state file (the file_seq reservation) first, then the orders file, each temp -> fsync -> rename -> dir
    assert kinds == ["fsync-file", "replace", "fsync-dir", "fsync-file", "replace", "fsync-dir"]
    assert calls[1][1] == ("state.json.tmp", "state.json")
    assert calls[3] == ("fsync-file", ([], 1, True))
    assert calls[4] == ("replace", (path.name + ".tmp", path.name))
    rows = read_csv(path)
    assert [(r["action"], r["direction"]) for r in rows] == [("OPEN", "LONG"), ("OPEN", "SHORT")]
    assert all(r["checksum_sha256"] == independent_checksum(r) for r in rows)
    assert list(orders_dir.glob("*.tmp")) == []


def test_file_seq_is_monotonic_across_restarts(dirs):
    clock = TestClock(T0)
    broker = MT4Broker()
    engine = ExecutionEngine(clock, broker)
    first = new_bridge(dirs, clock)
    seqs = []
    for n in (1, 2):
        engine.on_order_intent(order(n))
        seqs.append(int(read_csv(first.flush(broker))[0]["file_seq"]))
    restarted = new_bridge(dirs, clock)  # a new process on the same state file
    assert restarted.orders_file_seq == 2
    engine.on_order_intent(order(3))
    path = restarted.flush(broker)
    seqs.append(int(read_csv(path)[0]["file_seq"]))
    assert seqs == [1, 2, 3]
    assert path.name.endswith("_00000003.csv")
    assert json.loads(dirs["state_path"].read_text())["orders_file_seq"] == 3


def test_failed_write_keeps_the_rows_and_never_reuses_a_number(dirs, monkeypatch):
    broker, bridge = MT4Broker(), new_bridge(dirs)
    engine = ExecutionEngine(TestClock(T0), broker)
    engine.on_order_intent(order(1))
    real_replace = os.replace

    def failing(src, dst):
        if Path(dst).name.startswith("orders_"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(mt4_bridge.os, "replace", failing)
    with pytest.raises(OSError):
        bridge.flush(broker)
    monkeypatch.setattr(mt4_bridge.os, "replace", real_replace)
    assert len(broker.outbox()) == 1  # still queued
    assert list(dirs["orders_dir"].glob("orders_*.csv")) == []
    retried = new_bridge(dirs).flush(broker)
    assert read_csv(retried)[0]["file_seq"] == "2"  # number 1 was reserved by the failed attempt


def test_unreadable_state_refuses_to_guess(dirs):
    dirs["state_path"].write_text("{not json")
    with pytest.raises(BridgeStateError):
        new_bridge(dirs)
    dirs["state_path"].write_text(json.dumps({"orders_file_seq": -1, "fills_file_seq": 0}))
    with pytest.raises(BridgeStateError):
        new_bridge(dirs)


# --- fills in -----------------------------------------------------------------------------------------------------

def test_fills_round_trip_through_the_engine(dirs):
    clock = TestClock(T0)
    broker, bridge = MT4Broker(), new_bridge(dirs, clock)
    engine = ExecutionEngine(clock, broker)
    cid = order(1).client_order_id
    engine.on_order_intent(order(1))
    bridge.flush(broker)
    ea_fills(dirs["fills_dir"], "fills_20250106_120010.csv", 1, [
        {"client_order_id": cid, "ticket": "48213377", "status": "SUBMITTED"},
        {"client_order_id": cid, "ticket": "48213377", "status": "FILLED", "fill_id": "D-1", "lots": "0.50",
         "price": "1.03441", "commission": "3.50"},
    ])
    batch = bridge.poll_fills()
    assert batch.quarantined == [] and batch.last_file_seq == 1
    assert batch.events == [
        Acknowledged(cid, "48213377", datetime(2025, 1, 6, 12, 0, 10, tzinfo=UTC)),
        Filled(cid, "D-1", D("0.50"), D("1.03441"), datetime(2025, 1, 6, 12, 0, 10, tzinfo=UTC),
               commission=D("3.50"), broker_order_id="48213377"),
    ]
    out = engine.on_broker_events(batch.events)
    assert [(r.status, r.broker_order_id) for r in out] == [(S.SUBMITTED, "48213377"), (S.FILLED, "48213377")]
    bridge.acknowledge(batch)
    assert [p.name for p in bridge.processed_dir.iterdir()] == ["fills_20250106_120010.csv"]
    assert bridge.poll_fills().events == []

    # an operator close goes out as a CLOSE row with the ticket; the EA answers with CLOSED
    clock.advance(3600)
    assert engine.close_position(cid) == []
    assert engine.position(cid).close_requested_at == clock.now()
    [row] = read_csv(bridge.flush(broker))
    assert (row["action"], row["ticket"], row["client_order_id"]) == ("CLOSE", "48213377", cid)
    ea_fills(dirs["fills_dir"], "fills_20250106_130010.csv", 2, [
        {"client_order_id": cid, "ticket": "48213377", "status": "CLOSED", "fill_id": "D-2", "price": "1.03686",
         "close_reason": "manual"},
    ])
    batch = bridge.poll_fills()
    out = engine.on_broker_events(batch.events)
    assert [type(o) for o in out] == [ExecutionReport, TradeClosed]
    # (1.03686 - 1.03441) / 0.0001 = 24.5 pips; 0.00245 x 50,000 = 122.50 - 3.50 commission = 119.00
    assert (out[1].pips, out[1].pnl, out[1].close_reason) == (D("24.5"), D("119.00"), CloseReason.MANUAL)
    bridge.acknowledge(batch)
    assert new_bridge(dirs).fills_file_seq == 2


def test_reread_file_changes_nothing(dirs):
    clock = TestClock(T0)
    broker, bridge = MT4Broker(), new_bridge(dirs, clock)
    engine = ExecutionEngine(clock, broker)
    cid = order(1).client_order_id
    engine.on_order_intent(order(1))
    ea_fills(dirs["fills_dir"], "fills_a.csv", 1, [
        {"client_order_id": cid, "ticket": "7", "status": "FILLED", "fill_id": "D-1", "lots": "0.50", "price": "1.1"},
    ])
    first = bridge.poll_fills()
    assert len(engine.on_broker_events(first.events)) == 1
    again = bridge.poll_fills()  # not acknowledged yet (e.g. a crash before storing): read again
    assert engine.on_broker_events(again.events) == []
    assert engine.order(cid).filled_lots == D("0.50")


def test_bad_checksum_is_quarantined_and_used_for_nothing(dirs):
    bridge = new_bridge(dirs)
    bad = ea_fills(dirs["fills_dir"], "fills_bad.csv", 1, [
        {"client_order_id": "O-1", "ticket": "7", "status": "FILLED", "fill_id": "D-1", "lots": "0.50",
         "price": "1.1"},
    ], corrupt=True)
    good = ea_fills(dirs["fills_dir"], "fills_good.csv", 2, [
        {"client_order_id": "O-2", "ticket": "8", "status": "REJECTED", "reason": "invalid stops (130)"},
    ])
    batch = bridge.poll_fills()
    assert batch.events == [Rejected("O-2", "invalid stops (130)", datetime(2025, 1, 6, 12, 0, 10, tzinfo=UTC),
                                     broker_order_id="8")]
    assert batch.files == [good]
    quarantined = bridge.quarantine_dir / "fills_bad.csv"
    assert batch.quarantined == [quarantined]
    assert not bad.exists() and quarantined.exists()
    reason = (bridge.quarantine_dir / "fills_bad.csv.reason.txt").read_text()
    assert reason == "line 2: checksum_sha256 does not match the row\n"


@pytest.mark.parametrize(("rows", "why"), [
    ([{"client_order_id": "O-1", "status": "FILLED", "fill_id": "D-1", "lots": "0.5", "price": "-1"}], "price"),
    ([{"client_order_id": "O-1", "status": "FILLED", "fill_id": "D-1", "lots": "0.505", "price": "1.1"}], "lots"),
    ([{"client_order_id": "O-1", "status": "FILLED", "lots": "0.5", "price": "1.1"}], "needs a fill_id"),
    ([{"client_order_id": "O-1", "status": "SUBMITTED"}], "needs the ticket"),
    ([{"client_order_id": "O-1", "status": "OPENED", "ticket": "1"}], "status"),
    ([{"client_order_id": "O 1", "status": "SUBMITTED", "ticket": "1"}], "client_order_id"),
    ([{"client_order_id": "O-1", "status": "SUBMITTED", "ticket": "1", "timestamp": "2025-01-06 12:00:00"}],
     "timestamp"),
])
def test_invalid_rows_quarantine_the_file(dirs, rows, why):
    bridge = new_bridge(dirs)
    ea_fills(dirs["fills_dir"], "fills_x.csv", 1, rows)
    batch = bridge.poll_fills()
    assert batch.events == [] and len(batch.quarantined) == 1
    assert why in (bridge.quarantine_dir / "fills_x.csv.reason.txt").read_text()


def test_wrong_header_and_mixed_file_seq_are_quarantined(dirs):
    bridge = new_bridge(dirs)
    (dirs["fills_dir"] / "fills_header.csv").write_text("file_seq,status\n1,FILLED\n")
    path = ea_fills(dirs["fills_dir"], "fills_mixed.csv", 1, [
        {"client_order_id": "O-1", "status": "SUBMITTED", "ticket": "1"},
    ])
    extra = ea_fills(dirs["fills_dir"], "tmp_other.csv", 2, [
        {"client_order_id": "O-1", "status": "SUBMITTED", "ticket": "1"}])
    path.write_text(path.read_text() + extra.read_text().split("\n", 1)[1])  # a row of file_seq 2 appended
    batch = bridge.poll_fills()
    assert batch.events == []
    reasons = sorted(p.read_text() for p in bridge.quarantine_dir.glob("*.reason.txt"))
    assert len(reasons) == 2
    assert any(r.startswith("header") for r in reasons)
    assert any("differs from the file's 1" in r for r in reasons)


def test_replayed_file_seq_is_quarantined(dirs):
    bridge = new_bridge(dirs)
    ea_fills(dirs["fills_dir"], "fills_1.csv", 5, [{"client_order_id": "O-1", "status": "SUBMITTED", "ticket": "1"}])
    bridge.acknowledge(bridge.poll_fills())
    ea_fills(dirs["fills_dir"], "fills_2.csv", 5, [{"client_order_id": "O-1", "status": "SUBMITTED", "ticket": "1"}])
    batch = new_bridge(dirs).poll_fills()
    assert batch.events == [] and [p.name for p in batch.quarantined] == ["fills_2.csv"]
    assert "file_seq 5 is not after 5" in (bridge.quarantine_dir / "fills_2.csv.reason.txt").read_text()


def test_temp_files_are_not_read(dirs):
    bridge = new_bridge(dirs)
    path = ea_fills(dirs["fills_dir"], "fills_1.csv", 1, [
        {"client_order_id": "O-1", "status": "SUBMITTED", "ticket": "1"}])
    path.rename(path.with_name("fills_1.csv.tmp"))  # the EA is still writing it
    assert bridge.poll_fills().events == []
    assert (dirs["fills_dir"] / "fills_1.csv.tmp").exists()


def test_closed_row_reasons_are_classified(dirs):
    bridge = new_bridge(dirs)
    ea_fills(dirs["fills_dir"], "fills_1.csv", 1, [
        {"client_order_id": "O-1", "status": "CLOSED", "fill_id": "D-9", "price": "1.1", "close_reason": "sl"},
        {"client_order_id": "O-2", "status": "CLOSED", "fill_id": "D-8", "price": "1.1", "close_reason": "UNKNOWN"},
    ])
    events = bridge.poll_fills().events
    assert [(e.position_id, e.reason) for e in events if isinstance(e, Closed)] == [
        ("O-1", CloseReason.SL), ("O-2", CloseReason.MANUAL)]


def test_timeout_sends_a_cancel_to_the_ea(dirs):
    clock = TestClock(T0)
    broker, bridge = MT4Broker(), new_bridge(dirs, clock)
    engine = ExecutionEngine(clock, broker)
    engine.on_order_intent(order(1))
    bridge.flush(broker)
    clock.advance(30)
    assert [r.status for r in engine.on_clock(clock.now())] == [S.TIMEOUT]
    [row] = read_csv(bridge.flush(broker))
    assert (row["action"], row["client_order_id"], row["file_seq"]) == ("CANCEL", order(1).client_order_id, "2")
    # the EA's late fill is refused: the order stays TIMEOUT and no position appears
    late = Filled(order(1).client_order_id, "D-late", D("0.50"), D("1.1"), clock.now() + timedelta(seconds=1))
    assert engine.on_broker_events([late]) == []
    assert engine.order(order(1).client_order_id).status is S.TIMEOUT and engine.open_positions() == []
