"""MT4 CSV price bridge: the EA drops quote files into a watched directory; we ingest them.

File contract (one file = one batch of quotes):
- Written by the EA as `<name>.csv.tmp` (any name ending in .tmp/.part/.partial is ignored), then
  fsync'ed and renamed to `<name>.csv`: a file is only read once its final name exists, so a
  half-written file is never seen. Names starting with `.` or `~` are ignored too.
- UTF-8 (a BOM is tolerated). A header row, then one quote per row. Header names are
  case-insensitive and trimmed. Columns: `file_seq`, `checksum_sha256`, `ts` (or `timestamp`),
  `symbol`, `bid`, `ask`, optional `volume`; any other column is carried into the checksum and
  otherwise ignored.
- `file_seq`: integer >= 1, the same on every row of a file, strictly greater than the file_seq of
  the previous accepted file (gaps allowed). The last accepted value is persisted (a small JSON
  state file) so a restart does not re-accept old files.
- `checksum_sha256`: per row, the lower-case hex SHA-256 of the values of every *other* column,
  taken in alphabetical order of the (lower-cased) column names, each value trimmed of
  surrounding whitespace, joined with `|` (UTF-8). For the standard columns that is
  `ask|bid|file_seq|symbol|ts[|volume]`.
- `ts` is UTC: RFC 3339, `YYYY.MM.DD HH:MM:SS` (MT4's TimeToString of TimeGMT()) or epoch seconds.

Outcomes (nothing is dropped silently; every file ends in `processed/` or `quarantine/`):
- processed: the file's valid rows went through the same normalizer as the HTTP API and the
  accepted ticks were published; the file moves to `processed/`. Rows refused (checksum mismatch,
  wrong cell count, bad file_seq, any normalization rule) are listed with their data row number
  (1 = first row after the header) and file line number in the returned report and in a
  `<file>.rejects.json` next to the archived file.
- quarantined: unreadable file, missing columns, mixed file_seq values, no row with a valid
  checksum, or a file_seq not greater than the last accepted one (regression or re-delivery). The
  file moves to `quarantine/` with a `<file>.reason.json` saying why.
- failed: publishing failed; the file stays where it is and is retried on the next poll (later
  files wait, so order is kept).

One reader per directory: run the bridge in a single replica (the EA is the single writer). A
crash between publishing a file and archiving it re-reads the file on restart, and its ticks are
published again unless stale by then (max_price_age_seconds): at-least-once, like the bus.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eafix.contracts.primitives import format_timestamp
from eafix.data_ingestor.domain import BatchResult
from eafix.runtime.clock import Clock

__all__ = [
    "BridgeConfig",
    "CsvBridge",
    "FileReport",
    "ParsedFile",
    "RowRejection",
    "parse_bridge_csv",
    "render_bridge_csv",
    "row_checksum",
    "write_atomic",
]

CHECKSUM = "checksum_sha256"
FILE_SEQ = "file_seq"
REQUIRED = (FILE_SEQ, CHECKSUM, "ts", "symbol", "bid", "ask")
TEMP_SUFFIXES = (".tmp", ".part", ".partial")

Submit = Callable[[list[dict[str, str]]], Awaitable[BatchResult]]


def row_checksum(fields: Mapping[str, Any]) -> str:
    """SHA-256 (lower-case hex) of the row's values except the checksum, in column-name order."""
    parts = [str(fields[name]).strip() for name in sorted(fields) if name != CHECKSUM]
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def render_bridge_csv(file_seq: int, rows: Iterable[Mapping[str, Any]]) -> str:
    """A bridge file (header + rows with file_seq and checksums), as the EA writes it.

    Each row maps column -> value (`ts`, `symbol`, `bid`, `ask`, optionally `volume`).
    """
    rows = [{k: str(v) for k, v in r.items()} for r in rows]
    extra = sorted({k for r in rows for k in r} - {"ts", "symbol", "bid", "ask"})
    header = [FILE_SEQ, CHECKSUM, "ts", "symbol", "bid", "ask", *extra]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # the minimal quoting leaves a cell with a bare \r unquoted (only "\n" is the line end here), and a
    # reader takes that \r for a line end: such a row is written fully quoted
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    for r in rows:
        fields = {name: r.get(name, "") for name in header if name not in (FILE_SEQ, CHECKSUM)}
        fields[FILE_SEQ] = str(file_seq)
        fields[CHECKSUM] = row_checksum(fields)
        values = [fields[name] for name in header]
        (quoted if any("\r" in v for v in values) else writer).writerow(values)
    return out.getvalue()


def write_atomic(directory: Path, name: str, text: str) -> Path:
    """Write `directory/name` the bridge way: `<name>.tmp`, fsync, rename (and fsync the directory)."""
    directory = Path(directory)
    final = directory / name
    temp = directory / (name + ".tmp")
    with open(temp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, final)
    _fsync_dir(directory)
    return final


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- parsing (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowRejection:
    row: int  # 1-based data row (the first row after the header is 1)
    line: int  # 1-based line of the file (the header is line 1)
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "line": self.line, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class ParsedRow:
    row: int
    line: int
    fields: dict[str, str]


@dataclass
class ParsedFile:
    file_seq: int | None = None
    rows: list[ParsedRow] = field(default_factory=list)
    rejected: list[RowRejection] = field(default_factory=list)
    error: str | None = None  # a whole-file problem: quarantine
    data_rows: int = 0


def _int(text: str) -> int | None:
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        return None
    return int(text)


def parse_bridge_csv(text: str) -> ParsedFile:
    """Check a bridge file's header, checksums and file_seq; no normalization of the quotes."""
    result = ParsedFile()
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            result.error = "empty file: no header row"
            return result
        names = [cell.strip().lower() for cell in header]
        if "ts" not in names and "timestamp" in names:
            names = ["ts" if n == "timestamp" else n for n in names]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated or "" in names:
            problem = f"duplicate column(s) {', '.join(duplicated)}" if duplicated else "empty column name"
            result.error = f"bad header: {problem}"
            return result
        missing = [n for n in REQUIRED if n not in names]
        if missing:
            result.error = f"missing column(s) {', '.join(missing)} (header: {', '.join(names)})"
            return result
        row_no = 0
        next_line = reader.line_num + 1
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1  # where the row starts: a quoted cell may span lines
            if not any(cell.strip() for cell in cells):
                continue
            row_no += 1

            def reject(reason: str, detail: str, row: int = row_no, line: int = line) -> None:
                result.rejected.append(RowRejection(row, line, reason, detail))

            if len(cells) != len(names):
                reject("columns", f"expected {len(names)} cells, got {len(cells)}")
                continue
            fields = {name: cell.strip() for name, cell in zip(names, cells, strict=True)}
            given = fields[CHECKSUM].lower()
            expected = row_checksum(fields)
            if given != expected:
                reject("checksum_mismatch", f"checksum_sha256 {fields[CHECKSUM][:16]}... does not match the "
                                            f"row's values (expected {expected[:16]}...)")
                continue
            seq = _int(fields[FILE_SEQ])
            if seq is None or seq < 1:
                reject("file_seq_invalid", f"file_seq {fields[FILE_SEQ]!r} is not an integer >= 1")
                continue
            if result.file_seq is None:
                result.file_seq = seq
            elif seq != result.file_seq:
                result.error = f"mixed file_seq values in one file ({result.file_seq} and {seq} at line {line})"
                return result
            result.rows.append(ParsedRow(row_no, line, fields))
        result.data_rows = row_no
    except csv.Error as exc:
        result.error = f"malformed CSV at line {reader.line_num}: {exc}"
    return result


# --- the watcher (file-system adapter) -------------------------------------------------------------


@dataclass(frozen=True)
class BridgeConfig:
    watch_dir: Path
    processed_dir: Path | None = None  # default <watch_dir>/processed
    quarantine_dir: Path | None = None  # default <watch_dir>/quarantine
    state_file: Path | None = None  # default <processed_dir>/.bridge-state.json

    @property
    def processed(self) -> Path:
        return Path(self.processed_dir) if self.processed_dir else Path(self.watch_dir) / "processed"

    @property
    def quarantine(self) -> Path:
        return Path(self.quarantine_dir) if self.quarantine_dir else Path(self.watch_dir) / "quarantine"

    @property
    def state(self) -> Path:
        return Path(self.state_file) if self.state_file else self.processed / ".bridge-state.json"


@dataclass
class FileReport:
    name: str
    status: Literal["processed", "quarantined", "failed"]
    file_seq: int | None
    accepted: int = 0
    duplicates: int = 0
    rejected: list[RowRejection] = field(default_factory=list)
    reason: str | None = None
    moved_to: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status, "file_seq": self.file_seq, "accepted": self.accepted,
            "duplicates": self.duplicates, "rejected": [r.as_dict() for r in self.rejected], "reason": self.reason,
            "moved_to": str(self.moved_to) if self.moved_to else None,
        }


def _is_ready(path: Path) -> bool:
    name = path.name
    lowered = name.lower()
    return (
        lowered.endswith(".csv")
        and not name.startswith((".", "~"))
        and not lowered.endswith(TEMP_SUFFIXES)
        and path.is_file()
    )


class CsvBridge:
    """Polls the watched directory; `poll_once()` handles every ready file, oldest file_seq first.

    `submit(raws)` normalises and publishes one file's rows (e.g. the HTTP pipeline's submit with
    `naive_utc=True`) and returns the BatchResult; if it raises, the file stays for the next poll.
    """

    def __init__(self, config: BridgeConfig, submit: Submit, clock: Clock) -> None:
        self.config = config
        self._submit = submit
        self._clock = clock
        for directory in (Path(config.watch_dir), config.processed, config.quarantine):
            directory.mkdir(parents=True, exist_ok=True)
        self.last_file_seq = self._load_state()

    # -- state ------------------------------------------------------------------------------------

    def _load_state(self) -> int:
        path = self.config.state
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0
        try:
            value = json.loads(raw)["last_file_seq"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"bridge state file {path} is corrupt; fix or remove it") from None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"bridge state file {path}: last_file_seq must be an integer >= 0")
        return value

    def _save_state(self) -> None:
        path = self.config.state
        write_atomic(path.parent, path.name, json.dumps({"last_file_seq": self.last_file_seq}) + "\n")

    # -- polling ----------------------------------------------------------------------------------

    def ready_files(self) -> list[Path]:
        """Completed bridge files in the watched directory (temp and hidden files excluded)."""
        return sorted(p for p in Path(self.config.watch_dir).iterdir() if _is_ready(p))

    @staticmethod
    def _read(paths: Sequence[Path]) -> list[tuple[Path, ParsedFile]]:
        parsed = []
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue  # moved away meanwhile
            except (OSError, UnicodeDecodeError) as exc:
                parsed.append((path, ParsedFile(error=f"unreadable: {exc}")))
                continue
            parsed.append((path, parse_bridge_csv(text)))
        return parsed

    async def poll_once(self) -> list[FileReport]:
        paths = await asyncio.to_thread(self.ready_files)
        parsed = await asyncio.to_thread(self._read, paths)
        # files with a file_seq in sequence order; broken ones first (they only get quarantined)
        parsed.sort(key=lambda item: (item[1].file_seq is not None, item[1].file_seq or 0, item[0].name))
        reports: list[FileReport] = []
        for path, parsed_file in parsed:
            report = await self._handle(path, parsed_file)
            reports.append(report)
            if report.status == "failed":
                break  # keep file order: later files wait for this one
        return reports

    async def _handle(self, path: Path, parsed: ParsedFile) -> FileReport:
        name = path.name
        if parsed.error is not None:
            return self._quarantine(path, parsed, parsed.error)
        if parsed.file_seq is None:
            if parsed.rejected:
                return self._quarantine(path, parsed, "no row with a valid checksum and file_seq")
            report = FileReport(name, "processed", None, reason="no data rows")
            report.moved_to = self._archive(path, report)
            return report
        if parsed.file_seq <= self.last_file_seq:
            return self._quarantine(
                path, parsed,
                f"file_seq {parsed.file_seq} is not greater than the last accepted file_seq {self.last_file_seq}")
        rows = parsed.rows
        try:
            result = await self._submit([row.fields for row in rows])
        except Exception as exc:  # publish failed: leave the file for the next poll
            return FileReport(name, "failed", parsed.file_seq, reason=f"publish failed: {exc}")
        rejected = list(parsed.rejected)
        rejected.extend(
            RowRejection(rows[r.index].row, rows[r.index].line, r.reason.value, r.detail) for r in result.rejected
        )
        rejected.sort(key=lambda r: r.row)
        report = FileReport(name, "processed", parsed.file_seq, accepted=len(result.accepted),
                            duplicates=len(result.duplicates), rejected=rejected)
        report.moved_to = self._archive(path, report)
        self.last_file_seq = parsed.file_seq
        self._save_state()
        return report

    # -- moving files -----------------------------------------------------------------------------

    @staticmethod
    def _target(directory: Path, name: str) -> Path:
        target = directory / name
        n = 1
        while target.exists():
            target = directory / f"{name}.{n}"
            n += 1
        return target

    @staticmethod
    def _move(path: Path, target: Path) -> None:
        try:
            os.replace(path, target)
        except OSError:
            shutil.move(str(path), str(target))

    def _archive(self, path: Path, report: FileReport) -> Path:
        target = self._target(self.config.processed, path.name)
        self._move(path, target)
        if report.rejected:
            body = {"file": path.name, "file_seq": report.file_seq, "accepted": report.accepted,
                    "duplicates": report.duplicates, "rejected_rows": [r.as_dict() for r in report.rejected]}
            write_atomic(target.parent, target.name + ".rejects.json", json.dumps(body, indent=2) + "\n")
        return target

    def _quarantine(self, path: Path, parsed: ParsedFile, reason: str) -> FileReport:
        target = self._target(self.config.quarantine, path.name)
        self._move(path, target)
        body = {
            "file": path.name, "reason": reason, "file_seq": parsed.file_seq, "last_file_seq": self.last_file_seq,
            "rejected_rows": [r.as_dict() for r in parsed.rejected],
            "quarantined_at": format_timestamp(self._clock.now()),
        }
        write_atomic(target.parent, target.name + ".reason.json", json.dumps(body, indent=2) + "\n")
        return FileReport(path.name, "quarantined", parsed.file_seq, rejected=list(parsed.rejected), reason=reason,
                          moved_to=target)
