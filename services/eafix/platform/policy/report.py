"""Plain-text tables of findings for terminals and CI logs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._k8s import Finding

HEADER = ("TOOL", "CHECK", "KIND", "NAME", "MESSAGE")


def format_table(findings: Iterable[Finding], *, max_message: int = 120) -> str:
    """An aligned table, one finding a row, sorted; ``"no findings"`` when there are none."""
    rows: list[Sequence[str]] = [
        (f.tool, f.check, f.kind, f.name, _clip(f.message, max_message)) for f in sorted(findings)
    ]
    if not rows:
        return "no findings"
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER) - 1)]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]

    return "\n".join([line(HEADER), *(line(r) for r in rows), f"{len(rows)} finding(s)"])


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
