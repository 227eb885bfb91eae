"""MT4 CSV bridge: temp files, file_seq order and regressions, row checksums, quarantine."""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eafix.contracts.events import PriceTick
from eafix.data_ingestor.app import TickPipeline
from eafix.data_ingestor.domain import TickNormalizer
from eafix.data_ingestor.mt4_bridge import (
    BridgeConfig,
    CsvBridge,
    parse_bridge_csv,
    render_bridge_csv,
    row_checksum,
    write_atomic,
)
from eafix.runtime.clock import TestClock

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 1, 6, 12, 0, 30, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.ticks: list[PriceTick] = []
        self.fail: Exception | None = None

    async def __call__(self, ticks: list[PriceTick]) -> None:
        if self.fail is not None:
            raise self.fail
        self.ticks.extend(ticks)


@pytest.fixture
def clock() -> TestClock:
    return TestClock(NOW)


@pytest.fixture
def publish() -> Recorder:
    return Recorder()


@pytest.fixture
def pipeline(clock, publish) -> TickPipeline:
    return TickPipeline(TickNormalizer(clock), publish)


def make_bridge(tmp_path: Path, pipeline: TickPipeline, clock: TestClock) -> CsvBridge:
    return CsvBridge(BridgeConfig(tmp_path / "inbox"), functools.partial(pipeline.submit, naive_utc=True), clock)


@pytest.fixture
def bridge(tmp_path, pipeline, clock) -> CsvBridge:
    return make_bridge(tmp_path, pipeline, clock)


def quotes(*rows: tuple[str, str, str, str]) -> list[dict[str, str]]:
    return [{"ts": ts, "symbol": s, "bid": b, "ask": a} for ts, s, b, a in rows]


ROWS = quotes(
    ("2025.01.06 12:00:10", "EURUSD", "1.10000", "1.10010"),
    ("2025.01.06 12:00:11", "USDJPY", "157.312", "157.318"),
    ("2025-01-06T12:00:12Z", "EURUSD", "1.10002", "1.10012"),
)


def inbox(bridge: CsvBridge) -> list[str]:
    return sorted(p.name for p in Path(bridge.config.watch_dir).iterdir() if p.is_file())


def test_checksum_definition_by_hand():
    # sha256 of the other columns' values in alphabetical column order: ask|bid|file_seq|symbol|ts|volume
    fields = {"file_seq": "7", "ts": "2025.01.06 12:00:10", "symbol": "EURUSD", "bid": "1.10000", "ask": "1.10010",
              "volume": "3", "checksum_sha256": "ignored"}
    by_hand = hashlib.sha256(b"1.10010|1.10000|7|EURUSD|2025.01.06 12:00:10|3").hexdigest()
    assert row_checksum(fields) == by_hand
    text = render_bridge_csv(7, [{k: v for k, v in fields.items() if k not in ("file_seq", "checksum_sha256")}])
    assert text.splitlines() == ["file_seq,checksum_sha256,ts,symbol,bid,ask,volume",
                                 f"7,{by_hand},2025.01.06 12:00:10,EURUSD,1.10000,1.10010,3"]


async def test_temp_files_are_ignored_until_renamed(bridge, publish):
    directory = Path(bridge.config.watch_dir)
    (directory / "prices_20250106_120012.csv.tmp").write_text(render_bridge_csv(1, ROWS))
    (directory / ".prices_hidden.csv").write_text(render_bridge_csv(1, ROWS))
    assert await bridge.poll_once() == []
    assert publish.ticks == []
    (directory / "prices_20250106_120012.csv.tmp").rename(directory / "prices_20250106_120012.csv")
    [report] = await bridge.poll_once()
    assert (report.status, report.file_seq, report.accepted, report.rejected) == ("processed", 1, 3, [])
    assert [(t.symbol, str(t.bid)) for t in publish.ticks] == [
        ("EURUSD", "1.10000"), ("USDJPY", "157.312"), ("EURUSD", "1.10002")]
    assert publish.ticks[0].ts == datetime(2025, 1, 6, 12, 0, 10, tzinfo=UTC)  # MT4 format read as UTC
    assert report.moved_to == bridge.config.processed / "prices_20250106_120012.csv"
    assert report.moved_to.exists()
    assert inbox(bridge) == [".prices_hidden.csv"]


async def test_write_atomic_leaves_no_temp_file(bridge, publish):
    path = write_atomic(Path(bridge.config.watch_dir), "prices_1.csv", render_bridge_csv(1, ROWS))
    assert path.read_text() == render_bridge_csv(1, ROWS)
    assert inbox(bridge) == ["prices_1.csv"]


async def test_files_are_taken_in_file_seq_order(bridge, publish):
    directory = Path(bridge.config.watch_dir)
    write_atomic(directory, "a.csv", render_bridge_csv(8, quotes(("2025-01-06T12:00:20Z", "EURUSD", "1.2", "1.2001"))))
    write_atomic(directory, "b.csv", render_bridge_csv(6, quotes(("2025-01-06T12:00:10Z", "EURUSD", "1.1", "1.1001"))))
    reports = await bridge.poll_once()
    assert [(r.name, r.file_seq, r.status) for r in reports] == [("b.csv", 6, "processed"), ("a.csv", 8, "processed")]
    assert [str(t.bid) for t in publish.ticks] == ["1.1", "1.2"]
    assert bridge.last_file_seq == 8


async def test_file_seq_regression_is_quarantined_and_reported(tmp_path, bridge, pipeline, clock, publish):
    directory = Path(bridge.config.watch_dir)
    write_atomic(directory, "p5.csv", render_bridge_csv(5, ROWS[:1]))
    assert (await bridge.poll_once())[0].status == "processed"
    write_atomic(directory, "p4.csv", render_bridge_csv(4, ROWS[1:2]))
    write_atomic(directory, "p5-again.csv", render_bridge_csv(5, ROWS[2:]))
    reports = {r.name: r for r in await bridge.poll_once()}
    assert reports["p4.csv"].status == reports["p5-again.csv"].status == "quarantined"
    assert reports["p4.csv"].reason == "file_seq 4 is not greater than the last accepted file_seq 5"
    assert reports["p5-again.csv"].reason == "file_seq 5 is not greater than the last accepted file_seq 5"
    assert len(publish.ticks) == 1  # nothing of the refused files was published
    assert inbox(bridge) == []
    quarantined = bridge.config.quarantine / "p4.csv"
    assert quarantined.read_text() == render_bridge_csv(4, ROWS[1:2])  # kept intact for inspection
    reason = json.loads((bridge.config.quarantine / "p4.csv.reason.json").read_text())
    assert reason["file_seq"] == 4 and reason["last_file_seq"] == 5
    assert reason["quarantined_at"] == "2025-01-06T12:00:30Z"

    # the last accepted file_seq survives a restart
    restarted = make_bridge(tmp_path, pipeline, clock)
    assert restarted.last_file_seq == 5
    write_atomic(directory, "p3.csv", render_bridge_csv(3, ROWS[1:2]))
    assert (await restarted.poll_once())[0].status == "quarantined"


async def test_checksum_mismatch_rejects_that_row_only(bridge, publish):
    lines = render_bridge_csv(9, ROWS).splitlines()
    lines[2] = lines[2].replace("157.312", "157.313")  # tampered after the checksum was written
    write_atomic(Path(bridge.config.watch_dir), "p9.csv", "\n".join(lines) + "\n")
    [report] = await bridge.poll_once()
    assert report.status == "processed" and report.accepted == 2
    assert [(r.row, r.line, r.reason) for r in report.rejected] == [(2, 3, "checksum_mismatch")]
    assert [t.symbol for t in publish.ticks] == ["EURUSD", "EURUSD"]
    rejects = json.loads((bridge.config.processed / "p9.csv.rejects.json").read_text())
    assert rejects["rejected_rows"][0]["row"] == 2


async def test_header_names_are_case_insensitive(bridge, publish):
    row = {"ts": "2025-01-06T12:00:15Z", "symbol": "GBPUSD", "bid": "1.25000", "ask": "1.25012", "volume": "4"}
    checksum = hashlib.sha256(b"1.25012|1.25000|3|GBPUSD|2025-01-06T12:00:15Z|4").hexdigest()
    text = ("\ufeffFILE_SEQ, Checksum_SHA256 ,TIMESTAMP,Symbol,BID,Ask,VOLUME\r\n"
            f"3,{checksum.upper()},{row['ts']},{row['symbol']},{row['bid']},{row['ask']},{row['volume']}\r\n")
    write_atomic(Path(bridge.config.watch_dir), "upper.CSV", text)
    [report] = await bridge.poll_once()
    assert (report.status, report.accepted, report.rejected) == ("processed", 1, [])
    assert publish.ticks[0].model_dump(mode="json") == {
        "symbol": "GBPUSD", "ts": "2025-01-06T12:00:15Z", "bid": "1.25000", "ask": "1.25012", "volume": 4}


async def test_normalization_rejections_carry_row_numbers(bridge, publish):
    rows = quotes(
        ("2025-01-06T12:00:10Z", "EURUSD", "1.10000", "1.10010"),
        ("2025-01-06T11:59:00Z", "EURUSD", "1.10000", "1.10010"),  # 90 s old
        ("2025-01-06T12:00:11Z", "EURUSD", "1.10000", "1.20000"),  # 1000 pips
        ("2025-01-06T12:00:10Z", "EURUSD", "1.10000", "1.10010"),  # duplicate of row 1
    )
    write_atomic(Path(bridge.config.watch_dir), "p2.csv", render_bridge_csv(2, rows))
    [report] = await bridge.poll_once()
    assert report.accepted == 1 and report.duplicates == 1
    assert [(r.row, r.line, r.reason) for r in report.rejected] == [(2, 3, "stale"), (3, 4, "spread_above_max")]


@pytest.mark.parametrize(("text", "reason"), [
    ("ts,symbol,bid,ask\n2025-01-06T12:00:10Z,EURUSD,1.1,1.1001\n", "missing column(s) file_seq, checksum_sha256"),
    ("", "empty file"),
    ("file_seq,checksum_sha256,ts,symbol,bid,ask,bid\n", "bad header: duplicate column(s) bid"),
])
async def test_broken_files_are_quarantined(bridge, publish, text, reason):
    write_atomic(Path(bridge.config.watch_dir), "broken.csv", text)
    [report] = await bridge.poll_once()
    assert report.status == "quarantined" and report.reason.startswith(reason)
    assert (bridge.config.quarantine / "broken.csv.reason.json").exists()
    assert publish.ticks == [] and bridge.last_file_seq == 0


async def test_mixed_file_seq_and_all_bad_rows_are_quarantined(bridge, publish):
    mixed = render_bridge_csv(4, ROWS[:1]) + render_bridge_csv(5, ROWS[1:2]).splitlines()[1] + "\n"
    write_atomic(Path(bridge.config.watch_dir), "mixed.csv", mixed)
    bad = render_bridge_csv(6, ROWS[:1]).replace("1.10010", "1.10011")
    write_atomic(Path(bridge.config.watch_dir), "bad.csv", bad)
    reports = {r.name: r for r in await bridge.poll_once()}
    assert reports["mixed.csv"].reason.startswith("mixed file_seq values in one file (4 and 5")
    assert reports["bad.csv"].reason == "no row with a valid checksum and file_seq"
    assert [(r.row, r.reason) for r in reports["bad.csv"].rejected] == [(1, "checksum_mismatch")]
    assert publish.ticks == []


async def test_header_only_file_is_archived_as_empty(bridge):
    write_atomic(Path(bridge.config.watch_dir), "empty.csv", "file_seq,checksum_sha256,ts,symbol,bid,ask\n")
    [report] = await bridge.poll_once()
    assert (report.status, report.reason) == ("processed", "no data rows")
    assert bridge.last_file_seq == 0


async def test_publish_failure_keeps_the_file_for_the_next_poll(bridge, publish):
    directory = Path(bridge.config.watch_dir)
    write_atomic(directory, "p1.csv", render_bridge_csv(1, ROWS[:1]))
    write_atomic(directory, "p2.csv", render_bridge_csv(2, ROWS[1:2]))
    publish.fail = ConnectionError("redis down")
    reports = await bridge.poll_once()
    assert [(r.name, r.status) for r in reports] == [("p1.csv", "failed")]  # p2 waits behind p1
    assert "redis down" in reports[0].reason
    assert inbox(bridge) == ["p1.csv", "p2.csv"] and bridge.last_file_seq == 0
    publish.fail = None
    reports = await bridge.poll_once()
    assert [(r.name, r.status, r.accepted) for r in reports] == [("p1.csv", "processed", 1), ("p2.csv", "processed", 1)]
    assert bridge.last_file_seq == 2


def test_parse_reports_line_numbers_with_blank_lines_and_wrong_cell_counts():
    text = render_bridge_csv(3, ROWS[:2])
    lines = text.splitlines()
    text = "\n".join([lines[0], "", lines[1], "3,abc", lines[2]]) + "\n"
    parsed = parse_bridge_csv(text)
    assert parsed.error is None and parsed.file_seq == 3
    assert [(r.row, r.line) for r in parsed.rows] == [(1, 3), (3, 5)]
    assert [(r.row, r.line, r.reason) for r in parsed.rejected] == [(2, 4, "columns")]


def test_corrupt_state_file_stops_start_up(tmp_path, pipeline, clock):
    config = BridgeConfig(tmp_path / "inbox")
    config.processed.mkdir(parents=True)
    config.state.write_text("{oops")
    with pytest.raises(ValueError, match="corrupt"):
        CsvBridge(config, pipeline.submit, clock)
