"""MT4 file bridge: orders to the EA as CSV files, fills back from the EA's CSV files.

Two halves:
- `MT4Broker` is the `Broker` port for the engine: pure, it only queues outgoing rows (OPEN, CLOSE,
  CANCEL) in an outbox and answers nothing at once; the EA's answers arrive later as broker events.
- `MT4FileBridge` does the file I/O: `flush(broker)` writes the outbox as one orders file,
  `poll_fills()` reads the EA's fills files into broker events, `acknowledge(batch)` retires them
  once the caller has applied and stored those events.

Files (the CSV contract of the domain notes §2.5; UTF-8, comma separated, LF, a header row):
- every row carries `file_seq` (int >= 1, the same on every row of a file, strictly increasing from
  file to file), `checksum_sha256` and `timestamp` (UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`);
- `checksum_sha256` = SHA-256 (lower-case hex) of the row's other values (file_seq and timestamp
  included, so a row cannot be replayed into another file) taken in alphabetical order of their
  column names, joined with `|`, UTF-8 encoded;
- a file is written as `<name>.tmp` (created exclusively), flushed and fsync'ed, renamed to its final
  name with `os.replace`, and the directory is fsync'ed: a reader sees a complete file or none.
  The final name `<prefix>_YYYYMMDD_HHMMSS_<file_seq:08d>.csv` adds file_seq to the convention's
  `<base>_YYYYMMDD_HHMMSS.csv` so two files written in one second never share a target;
- the orders file_seq is reserved in the state file (written the same atomic way) BEFORE the orders
  file appears, so a crash can leave a gap in the sequence but never reuse a number.

Orders file (Python -> EA), `ORDER_COLUMNS`:
    action OPEN|CLOSE|CANCEL, client_order_id, ticket (CLOSE: the broker ticket; else empty), symbol,
    direction LONG|SHORT, lots, sl_pips, tp_pips (distances from the fill price), entry_price
    (reference only; market order), comment (<= 31 characters, the client_order_id's tail).

Fills file (EA -> Python), `FILL_COLUMNS`:
    client_order_id, ticket, status SUBMITTED|PARTIAL|FILLED|CLOSED|REJECTED|CANCELLED|EXPIRED,
    fill_id (the deal; required for PARTIAL/FILLED/CLOSED), lots (this fill's volume, PARTIAL/FILLED),
    price (PARTIAL/FILLED/CLOSED), commission (account currency, >= 0, empty = 0), close_reason (CLOSED:
    TP/SL/MANUAL/TIMEOUT/BROKER_REJECT or the EA's raw word, mapped like the trade-close classifier),
    reason (free text for REJECTED/CANCELLED/EXPIRED).

A fills file is validated as a whole (header, every row's types, checksum, one file_seq, that
file_seq after the last one accepted); a bad file is moved to `<fills_dir>/quarantine/` with a
`.reason.txt` beside it and none of its rows is used. Good files go to `<fills_dir>/processed/`
when acknowledged; the last accepted fills file_seq is persisted in the same state file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from eafix.contracts.events import Bar, PriceTick
from eafix.contracts.primitives import CloseReason, Id, Lots, MoneyOrZero, Price, Timestamp, format_timestamp
from eafix.execution_engine.domain import (
    Acknowledged,
    BrokerEvent,
    Cancelled,
    Closed,
    Expired,
    Filled,
    Order,
    Position,
    Rejected,
    classify_close_reason,
)
from eafix.runtime.clock import Clock
from eafix.runtime.csv_records import MalformedCsv, records

ORDER_COLUMNS: tuple[str, ...] = (
    "file_seq", "checksum_sha256", "timestamp", "action", "client_order_id", "ticket", "symbol", "direction",
    "lots", "sl_pips", "tp_pips", "entry_price", "comment",
)
FILL_COLUMNS: tuple[str, ...] = (
    "file_seq", "checksum_sha256", "timestamp", "client_order_id", "ticket", "status", "fill_id", "lots",
    "price", "commission", "close_reason", "reason",
)
FILL_STATUSES = frozenset({"SUBMITTED", "PARTIAL", "FILLED", "CLOSED", "REJECTED", "CANCELLED", "EXPIRED"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SEQ = re.compile(r"^[1-9][0-9]{0,17}$")
_COMMENT_MAX = 31
_NOTHING: tuple[BrokerEvent, ...] = ()


def row_checksum(row: Mapping[str, str]) -> str:
    """SHA-256 of the row's values except `checksum_sha256`, in alphabetical column order, joined by |."""
    payload = "|".join(row[key] for key in sorted(row) if key != "checksum_sha256")
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` appears complete or not at all (temp -> fsync -> rename)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_directory(path.parent)


def _records_of(reader: csv.DictReader) -> Iterator[tuple[int, dict]]:
    try:
        yield from records(reader)
    except MalformedCsv as exc:
        raise FillsFileError(str(exc)) from None


def encode_csv(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


# --- the broker side (pure) --------------------------------------------------------------------------------

class OrderAction(StrEnum):
    OPEN = "OPEN"
    CLOSE = "CLOSE"
    CANCEL = "CANCEL"


@dataclass(frozen=True, slots=True)
class OutgoingOrder:
    action: OrderAction
    client_order_id: str
    ticket: str
    symbol: str
    direction: str
    lots: Decimal
    sl_pips: Decimal
    tp_pips: Decimal
    entry_price: Decimal

    def fields(self) -> dict[str, str]:
        return {
            "action": self.action.value, "client_order_id": self.client_order_id, "ticket": self.ticket,
            "symbol": self.symbol, "direction": self.direction, "lots": format(self.lots, "f"),
            "sl_pips": format(self.sl_pips, "f"), "tp_pips": format(self.tp_pips, "f"),
            "entry_price": format(self.entry_price, "f"), "comment": self.client_order_id[-_COMMENT_MAX:],
        }


class MT4Broker:
    """The engine's broker for the MT4 EA: every request becomes an outbox row; answers come back
    through `MT4FileBridge.poll_fills()` -> `ExecutionEngine.on_broker_events()`. The EA manages SL/TP
    itself, so ticks and bars need nothing here."""

    def __init__(self) -> None:
        self._outbox: list[OutgoingOrder] = []

    def _row(self, action: OrderAction, order: Order, ticket: str | None) -> OutgoingOrder:
        return OutgoingOrder(action, order.client_order_id, ticket or "", order.symbol, order.direction.value,
                             order.lots, order.sl_pips, order.tp_pips, order.entry_price)

    def submit(self, order: Order, now: datetime) -> Sequence[BrokerEvent]:
        self._outbox.append(self._row(OrderAction.OPEN, order, None))
        return _NOTHING

    def cancel(self, order: Order, now: datetime, reason: str) -> Sequence[BrokerEvent]:
        self._outbox.append(self._row(OrderAction.CANCEL, order, order.broker_order_id))
        return _NOTHING

    def abandon(self, order: Order, now: datetime) -> None:
        # TIMEOUT/EXPIRED: make sure a late EA never executes it
        self._outbox.append(self._row(OrderAction.CANCEL, order, order.broker_order_id))

    def close(self, position: Position, reason: CloseReason, now: datetime) -> Sequence[BrokerEvent]:
        self._outbox.append(OutgoingOrder(
            OrderAction.CLOSE, position.client_order_id, position.broker_order_id or "", position.symbol,
            position.direction.value, position.lots, Decimal(0), Decimal(0), position.open_price))
        return _NOTHING

    def on_tick(self, tick: PriceTick, positions: object) -> Sequence[BrokerEvent]:
        return _NOTHING

    def on_bar(self, bar: Bar, positions: object) -> Sequence[BrokerEvent]:
        return _NOTHING

    def outbox(self) -> list[OutgoingOrder]:
        """Rows not written yet (a copy)."""
        return list(self._outbox)

    def written(self, count: int) -> None:
        """The first `count` outbox rows are on disk."""
        del self._outbox[:count]


# --- the file side (I/O) -------------------------------------------------------------------------------------

class BridgeStateError(RuntimeError):
    """The state file is unreadable: refuse to guess a file_seq."""


class FillsFileError(ValueError):
    """Why a fills file was quarantined."""


@dataclass
class FillsBatch:
    events: list[BrokerEvent] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # accepted, to retire on acknowledge()
    quarantined: list[Path] = field(default_factory=list)
    last_file_seq: int = 0


_TS = TypeAdapter(Timestamp)
_ID = TypeAdapter(Id)
_LOTS = TypeAdapter(Lots)
_PRICE = TypeAdapter(Price)
_MONEY = TypeAdapter(MoneyOrZero)


class MT4FileBridge:
    def __init__(self, orders_dir: Path, fills_dir: Path, state_path: Path, clock: Clock, *,
                 orders_prefix: str = "orders", fills_prefix: str = "fills") -> None:
        self.orders_dir, self.fills_dir, self.state_path = Path(orders_dir), Path(fills_dir), Path(state_path)
        self._clock = clock
        self._orders_prefix, self._fills_prefix = orders_prefix, fills_prefix
        for directory in (self.orders_dir, self.fills_dir, self.processed_dir, self.quarantine_dir,
                          self.state_path.parent):
            directory.mkdir(parents=True, exist_ok=True)
        self._state = self._load_state()

    @property
    def processed_dir(self) -> Path:
        return self.fills_dir / "processed"

    @property
    def quarantine_dir(self) -> Path:
        return self.fills_dir / "quarantine"

    @property
    def orders_file_seq(self) -> int:
        """The last orders file_seq reserved (0 before the first file)."""
        return self._state["orders_file_seq"]

    @property
    def fills_file_seq(self) -> int:
        """The file_seq of the last fills file acknowledged."""
        return self._state["fills_file_seq"]

    # --- state ------------------------------------------------------------------------------------------

    def _load_state(self) -> dict[str, int]:
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return {"orders_file_seq": 0, "fills_file_seq": 0}
        try:
            data = json.loads(raw)
            state = {key: data[key] for key in ("orders_file_seq", "fills_file_seq")}
        except (ValueError, KeyError, TypeError) as exc:
            raise BridgeStateError(f"{self.state_path}: unreadable MT4 bridge state ({exc})") from None
        if not all(type(v) is int and v >= 0 for v in state.values()):
            raise BridgeStateError(f"{self.state_path}: file_seq values must be integers >= 0")
        return state

    def _save_state(self, **changes: int) -> None:
        state = {**self._state, **changes}
        data = json.dumps(state, sort_keys=True).encode("utf-8") + b"\n"
        # atomic_write refuses an existing temp file (O_EXCL); a stale one left by a crash is ours to remove
        self.state_path.with_name(self.state_path.name + ".tmp").unlink(missing_ok=True)
        atomic_write(self.state_path, data)
        self._state = state

    # --- orders ---------------------------------------------------------------------------------------------

    def write_orders(self, orders: Sequence[OutgoingOrder]) -> Path | None:
        """Write `orders` as one orders file (None when there is nothing to write)."""
        if not orders:
            return None
        seq = self._state["orders_file_seq"] + 1
        self._save_state(orders_file_seq=seq)  # reserve the number before the file exists
        now = self._clock.now()
        stamp = format_timestamp(now)
        rows = []
        for order in orders:
            row = {"file_seq": str(seq), "timestamp": stamp, **order.fields()}
            row["checksum_sha256"] = row_checksum(row)
            rows.append(row)
        path = self.orders_dir / f"{self._orders_prefix}_{now:%Y%m%d_%H%M%S}_{seq:08d}.csv"
        atomic_write(path, encode_csv(ORDER_COLUMNS, rows))
        return path

    def flush(self, broker: MT4Broker) -> Path | None:
        """Write the broker's outbox; rows leave the outbox only once their file is in place."""
        pending = broker.outbox()
        path = self.write_orders(pending)
        broker.written(len(pending))
        return path

    # --- fills ------------------------------------------------------------------------------------------------

    def poll_fills(self) -> FillsBatch:
        """Read every complete fills file; bad ones are quarantined. Call `acknowledge(batch)` after the
        events were applied and stored (until then a later poll reads the same files again, which the
        engine's fill-id deduplication makes harmless)."""
        batch = FillsBatch(last_file_seq=self._state["fills_file_seq"])
        parsed: list[tuple[int, Path, list[BrokerEvent]]] = []
        for path in sorted(self.fills_dir.glob(f"{self._fills_prefix}_*.csv")):
            if not path.is_file():
                continue
            try:
                seq, events = self._parse_fills(path)
            except FillsFileError as exc:
                batch.quarantined.append(self._quarantine(path, str(exc)))
                continue
            parsed.append((seq, path, events))
        parsed.sort(key=lambda item: (item[0], item[1].name))
        for seq, path, events in parsed:
            if seq and seq <= batch.last_file_seq:
                reason = f"file_seq {seq} is not after {batch.last_file_seq} (a replayed or out-of-order file)"
                batch.quarantined.append(self._quarantine(path, reason))
                continue
            batch.last_file_seq = max(batch.last_file_seq, seq)
            batch.files.append(path)
            batch.events.extend(events)
        return batch

    def acknowledge(self, batch: FillsBatch) -> None:
        """Retire the batch's files to processed/ and persist its last file_seq."""
        for path in batch.files:
            if path.exists():
                os.replace(path, self._free_name(self.processed_dir, path.name))
        fsync_directory(self.processed_dir)
        if batch.last_file_seq > self._state["fills_file_seq"]:
            self._save_state(fills_file_seq=batch.last_file_seq)

    def _free_name(self, directory: Path, name: str) -> Path:
        target, n = directory / name, 1
        while target.exists():
            target, n = directory / f"{name}.{n}", n + 1
        return target

    def _quarantine(self, path: Path, reason: str) -> Path:
        target = self._free_name(self.quarantine_dir, path.name)
        os.replace(path, target)
        atomic_write(target.with_name(target.name + ".reason.txt"), (reason + "\n").encode("utf-8"))
        return target

    def _parse_fills(self, path: Path) -> tuple[int, list[BrokerEvent]]:
        """(file_seq, events) of a valid file (file_seq 0 for a header-only file)."""
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FillsFileError(f"not UTF-8: {exc}") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            fieldnames = reader.fieldnames
        except csv.Error as exc:
            raise FillsFileError(f"line 1: not valid CSV ({exc})") from None
        if fieldnames is None or sorted(fieldnames) != sorted(FILL_COLUMNS):
            raise FillsFileError(f"header {fieldnames} is not the fills columns {list(FILL_COLUMNS)}")
        file_seq = 0
        events: list[BrokerEvent] = []
        for number, row in _records_of(reader):
            try:
                seq, event = self._parse_row(row)
            except FillsFileError as exc:
                raise FillsFileError(f"line {number}: {exc}") from None
            if file_seq and seq != file_seq:
                raise FillsFileError(f"line {number}: file_seq {seq} differs from the file's {file_seq}")
            file_seq = seq
            events.append(event)
        return file_seq, events

    @staticmethod
    def _parse_row(row: dict) -> tuple[int, BrokerEvent]:
        if None in row or any(value is None for value in row.values()):
            raise FillsFileError("wrong number of fields")
        if not _SEQ.match(row["file_seq"]):
            raise FillsFileError(f"file_seq {row['file_seq']!r} is not an integer >= 1")
        checksum = row["checksum_sha256"]
        if not _HEX64.match(checksum) or checksum != row_checksum(row):
            raise FillsFileError("checksum_sha256 does not match the row")

        def typed(adapter: TypeAdapter, name: str, value: str | None = None):
            try:
                return adapter.validate_python(row[name] if value is None else value)
            except ValidationError as exc:
                raise FillsFileError(f"{name} {row[name]!r}: {exc.errors()[0]['msg']}") from None

        ts: datetime = typed(_TS, "timestamp")
        client_order_id: str = typed(_ID, "client_order_id")
        status, ticket, fill_id = row["status"], row["ticket"].strip(), row["fill_id"].strip()
        if status not in FILL_STATUSES:
            raise FillsFileError(f"status {status!r} is not one of {sorted(FILL_STATUSES)}")
        if ticket:
            ticket = typed(_ID, "ticket", ticket)
        commission: Decimal = typed(_MONEY, "commission", row["commission"] or "0")
        reason = row["reason"].strip() or None
        event: BrokerEvent
        if status == "SUBMITTED":
            if not ticket:
                raise FillsFileError("SUBMITTED needs the ticket")
            event = Acknowledged(client_order_id, ticket, ts)
        elif status in ("PARTIAL", "FILLED", "CLOSED"):
            if not fill_id:
                raise FillsFileError(f"{status} needs a fill_id")
            price: Decimal = typed(_PRICE, "price")
            if status == "CLOSED":
                event = Closed(client_order_id, fill_id, price, classify_close_reason(row["close_reason"]), ts,
                               commission=commission)
            else:
                lots: Decimal = typed(_LOTS, "lots")
                event = Filled(client_order_id, fill_id, lots, price, ts, commission=commission,
                               broker_order_id=ticket or None)
        elif status == "REJECTED":
            event = Rejected(client_order_id, reason or "rejected by the EA", ts, broker_order_id=ticket or None)
        elif status == "CANCELLED":
            event = Cancelled(client_order_id, reason or "cancelled by the EA", ts)
        else:
            event = Expired(client_order_id, reason or "expired at the broker", ts)
        return int(row["file_seq"]), event


__all__ = [
    "FILL_COLUMNS",
    "ORDER_COLUMNS",
    "BridgeStateError",
    "FillsBatch",
    "FillsFileError",
    "MT4Broker",
    "MT4FileBridge",
    "OrderAction",
    "OutgoingOrder",
    "atomic_write",
    "encode_csv",
    "row_checksum",
]
