"""Hypothesis strategies shared by the property tests (tests/service/test_properties_*.py): fuzz text
and bytes, and "near-valid" inputs made by mutating one place of a valid document, so a parser is
driven both far from and close to what it accepts."""

from __future__ import annotations

import csv
import io
from typing import Any

from hypothesis import strategies as st

# characters that matter to the formats parsed here: separators, quotes, line ends, signs, exponents
_SPECIAL = list(',;"\'\n\r\t :.-+eEZzT_#|[]{}!&*%@`\x00\ufeff\u00a0\u0660')

fuzz_text = st.text(st.characters(codec="utf-8") | st.sampled_from(_SPECIAL), max_size=200)
fuzz_bytes = st.binary(max_size=200)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid text with one character replaced, inserted or deleted (or a slice cut out)."""
    text = draw(valid)
    at = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(_SPECIAL) | st.characters(codec="utf-8"))
    kind = draw(st.sampled_from(("replace", "insert", "delete", "cut")))
    if kind == "insert" or not text:
        return text[:at] + char + text[at:]
    at = min(at, len(text) - 1)
    if kind == "replace":
        return text[:at] + char + text[at + 1:]
    if kind == "delete":
        return text[:at] + text[at + 1:]
    return text[:at] + text[draw(st.integers(at, len(text))):]


# a field value that is almost right: empty, blank, signs, exponents, huge, non-finite, other digits
near_numbers = st.sampled_from([
    "", " ", "-1", "0", "-0", "1e3", "1E-9", "1e999999", "NaN", "inf", "-Infinity", "1.2.3", "0x10", "1_000",
    "\u0661.5", "99999999999999999999999999999999999.123456789", "0.000000001", "1,5", "+1.5", " 1.5 ", "abc",
]) | st.decimals(allow_nan=True, allow_infinity=True).map(str)


def csv_text(rows: list[dict[str, str]], fields: list[str] | None = None) -> str:
    """Rows as CSV with a header; "\r\n" makes the writer quote a cell holding \r or \n (with "\n"
    alone it leaves a \r bare)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields or list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def replaced(document: Any, path: tuple, value: Any) -> Any:
    """`document` (nested dicts and lists) with the value at `path` replaced."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: replaced(document[head], rest, value)}
    return [replaced(v, rest, value) if i == head else v for i, v in enumerate(document)]
