"""A parameter sweep's heatmap (`eafix optimize`): the objective over two parameters, drawn with
matplotlib's Agg backend as PNG or SVG (by the file's extension). A cell with more than one row (the
grid has further parameters) shows the best of them; a cell without a row (pruned by a constraint) or
without a figure is left blank. The best cell is outlined."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

MAX_LABELLED = 400  # cells with their value written in them; more would be unreadable


def cells(rows: Sequence[Mapping[str, object]], x: str, xs: Sequence[object], y: str, ys: Sequence[object],
          column: str, maximize: bool) -> list[list[float]]:
    """The matrix drawn: [row of ys][column of xs] -> the best figure there, NaN where there is none."""
    better = max if maximize else min
    grid = [[math.nan] * len(xs) for _ in ys]
    for row in rows:
        value = row[column]
        if value is None or row[x] not in xs or row[y] not in ys:
            continue
        i, j = list(ys).index(row[y]), list(xs).index(row[x])
        current = grid[i][j]
        grid[i][j] = float(value) if math.isnan(current) else better(current, float(value))  # type: ignore[arg-type]
    return grid


def write_heatmap(rows: Sequence[Mapping[str, object]], x: str, xs: Sequence[object], y: str, ys: Sequence[object],
                  column: str, maximize: bool, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = cells(rows, x, xs, y, ys, column, maximize)
    fig, ax = plt.subplots(figsize=(min(2 + 0.7 * len(xs), 14), min(1.6 + 0.45 * len(ys), 10)), dpi=90)
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdYlGn" if maximize else "RdYlGn_r")
    fig.colorbar(image, ax=ax, label=column)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, loc="left", fontsize=10)
    figures = [(v, i, j) for i, line in enumerate(grid) for j, v in enumerate(line) if not math.isnan(v)]
    if len(xs) * len(ys) <= MAX_LABELLED:
        for v, i, j in figures:
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    if figures:
        _, i, j = (max if maximize else min)(figures, key=lambda f: f[0])
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    fig.tight_layout()
    fig.savefig(path, format="svg" if path.suffix.lower() == ".svg" else "png")
    plt.close(fig)
    return path
