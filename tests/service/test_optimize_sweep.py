"""`eafix optimize`'s inputs (eafix.backtest.sweep, eafix.backtest.optimize): grids, constraints (parsed,
never eval'd), the template's placeholders, objectives, and walk-forward windows. No runs here."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from eafix.backtest.data import load, write_sample
from eafix.backtest.optimize import STATISTICS, ObjectiveError, objective_column, split_windows
from eafix.backtest.sweep import (
    SweepError,
    Template,
    combinations,
    parse_constraint,
    parse_grid,
    parse_grids,
)
from eafix.reporting.metrics import Summary


@pytest.mark.parametrize(("text", "values"), [
    ("fast=5..30:5", (5, 10, 15, 20, 25, 30)),
    ("slow=20..100:10", (20, 30, 40, 50, 60, 70, 80, 90, 100)),
    ("n=1..3", (1, 2, 3)),  # step 1 when left out
    ("n=1..8:3", (1, 4, 7)),  # the end bound is kept only when a step lands on it
    ("k=1.0..2.0:0.5", (1.0, 1.5, 2.0)),
    ("k=0.1..0.3:0.1", (0.1, 0.2, 0.3)),  # no float drift (0.1 + 0.2 != 0.3 in floats)
    ("fast=5,10,20", (5, 10, 20)),
    ("ratio=1.5, 2 ,3.0", (1.5, 2, 3.0)),
    ("ma=sma,ema", ("sma", "ema")),
])
def test_grids(text, values):
    grid = parse_grid(text)
    assert grid.name == text.split("=")[0]
    assert grid.values == values
    assert [type(v) for v in grid.values] == [type(v) for v in values]


@pytest.mark.parametrize(("text", "message"), [
    ("fast", "'fast': expected name=a..b:step"),
    ("fast=", "'fast=': expected name=a..b:step"),
    ("1fast=1,2", "'1fast' is not a parameter name"),
    ("fast=a..b", "'a' is not a number"),
    ("fast=5..30:0", "the step must be positive"),
    ("fast=5..30:-5", "the step must be positive"),
    ("fast=30..5", "runs from 30 up to 5, which is below it"),
    ("fast=5,,10", "an empty value"),
    ("fast=5,10,5", "a value is listed twice"),
    ("fast=1..1000000", "1,000,000 values, more than 100,000"),
    ("fast=5..nan", "'nan' is not a finite number"),
])
def test_bad_grids_name_the_problem(text, message):
    with pytest.raises(SweepError, match="^--grid ") as caught:
        parse_grid(text)
    assert message in str(caught.value)


def test_a_grid_given_twice_is_refused():
    with pytest.raises(SweepError, match="--grid fast: given twice"):
        parse_grids(["fast=5,10", "slow=20", "fast=7"])


def test_constraints_prune_the_grid():
    grids = parse_grids(["fast=5..30:5", "slow=20..100:10"])
    kept, total = combinations(grids, [parse_constraint("fast < slow", ["fast", "slow"])])
    assert total == 6 * 9
    # by hand: slow 20 keeps fast 5, 10, 15; slow 30 keeps 5..25; slow 40..100 keeps all six: 3 + 5 + 7 * 6
    assert len(kept) == 50
    assert {(p["fast"], p["slow"]) for p in kept} == {
        (f, s) for f, s in itertools.product(range(5, 31, 5), range(20, 101, 10)) if f < s}
    assert kept[0] == {"fast": 5, "slow": 20}  # grid order: the first grid varies slowest


@pytest.mark.parametrize(("text", "expected"), [
    ("slow >= 2 * fast", {(10, 20), (10, 30), (10, 40), (20, 40)}),
    ("fast < slow <= 30", {(10, 20), (10, 30), (20, 30)}),
    ("fast < slow and not slow == 40", {(10, 20), (10, 30), (20, 30)}),
    ("fast == 30 or slow - fast > 25", {(10, 40), (30, 20), (30, 30), (30, 40)}),
    ("slow % 20 == 0 and fast / 10 != 2", {(10, 20), (10, 40), (30, 20), (30, 40)}),
    ("-fast > -15", {(10, 20), (10, 30), (10, 40)}),
])
def test_constraint_expressions(text, expected):
    grids = parse_grids(["fast=10,20,30", "slow=20,30,40"])
    kept, _ = combinations(grids, [parse_constraint(text, ["fast", "slow"])])
    assert {(p["fast"], p["slow"]) for p in kept} == expected


@pytest.mark.parametrize(("text", "message"), [
    ("__import__('os').system('true')", "call is not allowed"),
    ("fast.real < 3", "attribute is not allowed"),
    ("fast < sloww", "'sloww' is not a grid parameter (the grid has: fast, slow)"),
    ("fast <", "not an expression"),
    ("fast", "not a condition"),
    ("fast + slow", "not a condition"),
    ("[fast][0] < 3", "subscript is not allowed"),
    ("fast < slow if True else False", "ifexp is not allowed"),
    ("fast ** 99 < slow", "pow is not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("fast < True", "True is not a number or word"),
])
def test_bad_constraints_are_refused_before_any_run(text, message):
    with pytest.raises(SweepError, match="^--constraint ") as caught:
        parse_constraint(text, ["fast", "slow"])
    assert message in str(caught.value)


def test_a_constraint_that_cannot_be_evaluated_names_the_values():
    grids = parse_grids(["ma=sma,ema", "fast=0,5"])
    with pytest.raises(SweepError, match=r"--constraint 'ma < 3' cannot be evaluated at ma=sma, fast=0"):
        combinations(grids, [parse_constraint("ma < 3", ["ma", "fast"])])
    with pytest.raises(SweepError, match=r"cannot be evaluated at ma=sma, fast=0: division by zero"):
        combinations(grids, [parse_constraint("10 / fast > 1", ["ma", "fast"])])


TEMPLATE = """\
# swept: {fast} and {slow} (a placeholder in a comment does not count: {ignored})
version: 1
defaults:
  stop: {atr_multiple: {k}, min_pips: 10, max_pips: 200, fallback_pips: 20}
strategies:
  sma_cross:
    type: ma_crossover
    fast: sma({fast})   # {also_ignored}
    slow: "{ma}({slow})"
"""


def test_the_template_fills_its_placeholders_and_only_them():
    template = Template(TEMPLATE, "s.yaml")
    assert template.placeholders == ["k", "fast", "ma", "slow"]
    template.check(["fast", "slow", "k", "ma"])
    text = template.render({"fast": 10, "slow": 30, "k": 1.5, "ma": "ema"})
    assert "stop: {atr_multiple: 1.5, min_pips: 10, max_pips: 200, fallback_pips: 20}" in text
    assert "fast: sma(10)" in text
    assert 'slow: "ema(30)"' in text


def test_grid_and_placeholders_must_match():
    template = Template(TEMPLATE, "s.yaml")
    with pytest.raises(SweepError, match=r"--grid fsat: s.yaml has no \{fsat\} placeholder \(its placeholders: "
                                         r"\{k\}, \{fast\}, \{ma\}, \{slow\}\)"):
        template.check(["fsat", "slow", "k", "ma"])
    with pytest.raises(SweepError, match=r"s.yaml: placeholder \{ma\} has no --grid ma=..."):
        template.check(["fast", "slow", "k"])
    with pytest.raises(SweepError, match=r"its placeholders: none"):
        Template("version: 1\n", "plain.yaml").check(["fast"])


@pytest.mark.parametrize(("name", "column"), [
    ("sharpe", "sharpe"), ("return", "return_pct"), ("profit-factor", "profit_factor"),
    ("Profit Factor", "profit_factor"), ("sqn", "sqn"), ("max_drawdown_pct", "max_drawdown_pct")])
def test_objectives(name, column):
    assert objective_column(name) == column


def test_an_unknown_objective_lists_the_valid_ones():
    with pytest.raises(ObjectiveError) as caught:
        objective_column("sharp")
    message = str(caught.value)
    assert message.startswith("objective 'sharp' is not a statistic; valid: ")
    for name in ("return", "sharpe", "sortino", "calmar", "profit_factor", "sqn", "win_rate", "trades"):
        assert name in message.split("valid: ")[1].split(", ")


def test_every_numeric_statistic_of_the_summary_is_a_column():
    numeric = {f.name for f in dataclasses.fields(Summary)
               if any(t in str(f.type) for t in ("int", "float", "Decimal"))}
    assert numeric - {"start_balance"} == set(STATISTICS)  # the opening balance is the same in every row
    assert len(STATISTICS) == len(set(STATISTICS))


def test_walk_forward_windows_cover_the_data_without_overlap(tmp_path):
    dataset = load(write_sample(tmp_path / "s.csv", bars=1003))
    windows = split_windows(dataset, 5)
    # cut before the bars 1003 * i // 5 for i = 1..4: 200, 401, 601, 802
    assert [len(w.events) for w in windows] == [200, 201, 200, 201, 201]
    assert [e for w in windows for e in w.events] == dataset.events  # each bar once, in order
    for before, after in itertools.pairwise(windows):
        assert before.events[-1].ts_close <= after.events[0].ts_open
    with pytest.raises(SweepError, match="2000 windows need at least 2000 bar times, the data has 1003"):
        split_windows(dataset, 2000)


def test_walk_forward_windows_keep_a_times_bars_together(tmp_path):
    path = tmp_path / "two.csv"
    rows = ["timestamp,symbol,open,high,low,close"]
    for hour in range(10):
        for symbol, price in (("EURUSD", "1.1"), ("USDJPY", "150.1")):
            rows.append(f"2026-03-02T{hour:02d}:00:00Z,{symbol},{price},{price},{price},{price}")
    path.write_text("\n".join(rows) + "\n")
    dataset = load(path)
    windows = split_windows(dataset, 3)
    assert [len(w.events) for w in windows] == [6, 6, 8]  # 10 times: 3, 3, 4 of them, two bars each
    assert [e for w in windows for e in w.events] == dataset.events
    for w in windows:
        times = [b.ts_close for b in w.events]
        assert all(times.count(t) == 2 for t in times)


def test_the_documented_example_is_a_template_of_fast_and_slow():
    from eafix.backtest.optimize import Job, strategies_for

    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sma_cross_sweep.yaml"
    template = Template(path.read_text(), str(path))
    template.check(["fast", "slow"])
    config = strategies_for(Job(path, template), {"fast": 5, "slow": 100})
    [strategy] = config.strategies
    assert strategy.name == "sma_cross"
    params = strategy.params
    assert (params.fast, params.slow, params.stop_and_reverse) == ("sma(5)", "sma(100)", True)


def test_heatmap_cells_show_the_best_over_other_parameters_and_blanks():
    import math

    from eafix.reporting.heatmap import cells

    rows = [  # k is a third parameter: each (fast, slow) cell shows the best over k
        {"fast": 5, "slow": 20, "k": 1, "sharpe": 0.5}, {"fast": 5, "slow": 20, "k": 2, "sharpe": 1.5},
        {"fast": 10, "slow": 20, "k": 1, "sharpe": -1.0}, {"fast": 10, "slow": 20, "k": 2, "sharpe": None},
        {"fast": 5, "slow": 30, "k": 1, "sharpe": None}, {"fast": 5, "slow": 30, "k": 2, "sharpe": None},
    ]  # (10, 30) pruned: no row
    best = cells(rows, "fast", [5, 10], "slow", [20, 30], "sharpe", maximize=True)
    assert best[0] == [1.5, -1.0]
    assert all(math.isnan(v) for v in best[1])  # no figure at (5, 30), no row at (10, 30)
    assert cells(rows, "fast", [5, 10], "slow", [20, 30], "sharpe", maximize=False)[0] == [0.5, -1.0]
