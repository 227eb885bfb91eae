"""CSV records with the line each starts on, for parsers whose errors name a line.

A quoted cell may span lines, and a bare CR ends a line as the csv module counts them, so a record's
line is where it starts, not `reader.line_num` (where it ended). Malformed CSV (an unclosed quote, a
field over the csv module's size limit) becomes `MalformedCsv` with the line of the record it broke in;
each parser turns that into its own error."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

__all__ = ["MalformedCsv", "records"]


class MalformedCsv(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: not valid CSV ({reason})")
        self.line, self.reason = line, reason


def records(reader: Any) -> Iterator[tuple[int, Any]]:
    """(line, record) for each record still to come from a `csv.reader`, or a `csv.DictReader` whose
    header was read (`fieldnames`)."""
    start = reader.line_num + 1
    try:
        for record in reader:
            yield start, record
            start = reader.line_num + 1
    except csv.Error as exc:
        raise MalformedCsv(start, str(exc)) from None
