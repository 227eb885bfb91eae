"""A parameter sweep's inputs: the grid, its constraints and the strategies template they fill.

A strategies YAML becomes a template by writing `{name}` where a swept value goes:

    fast: sma({fast})
    slow: sma({slow})

`name=a..b:step` gives a placeholder the values a, a+step, ... up to b inclusive (step 1 when left
out), `name=v1,v2,...` a list (numbers or words: `ma=sma,ema` for `fast: {ma}({fast})`). The text is
filled in before the YAML is read, so a placeholder stands wherever a value can (`period: {n}`,
`stop: {atr_multiple: {k}}`); a YAML flow mapping is never taken for one (it holds a colon).

Every grid name must be a placeholder of the file and every placeholder must have a grid (placeholders
in comments do not count). A constraint (`fast < slow`, `slow >= 2 * fast and fast != 10`) is parsed
with `ast` and evaluated by walking the tree: comparisons, and/or/not, + - * / %, numbers and the grid's
names; anything else (calls, attributes, unknown names) is refused before a run starts. Errors are
`SweepError`, whose message names the bad grid, constraint or placeholder.
"""

from __future__ import annotations

import ast
import itertools
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

Value = int | float | str
Params = dict[str, Value]

MAX_COMBINATIONS = 100_000  # before constraints: a typo like 1..100000 should not start a week-long run
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COMMENT = re.compile(r"(^|\s)#.*$", re.MULTILINE)  # YAML: '#' at a line's start or after a space
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
GRID_SYNTAX = "name=a..b:step (e.g. fast=5..30:5) or name=v1,v2,... (e.g. fast=5,10,20)"


class SweepError(ValueError):
    """A bad grid, constraint or template; str() is the one line to show."""


@dataclass(frozen=True)
class Grid:
    name: str
    values: tuple[Value, ...]


def _number(text: str, grid: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SweepError(f"--grid {grid!r}: {text.strip()!r} is not a number; expected {GRID_SYNTAX}") from None
    if not value.is_finite():
        raise SweepError(f"--grid {grid!r}: {text.strip()!r} is not a finite number")
    return value


def _value(number: Decimal, integral: bool) -> Value:
    return int(number) if integral else float(number)


def _range(text: str, body: str) -> tuple[Value, ...]:
    bounds, _, step_text = body.partition(":")
    low_text, _, high_text = bounds.partition("..")
    low, high = _number(low_text, text), _number(high_text, text)
    step = _number(step_text, text) if step_text.strip() else Decimal(1)
    if step <= 0:
        raise SweepError(f"--grid {text!r}: the step must be positive")
    if high < low:
        raise SweepError(f"--grid {text!r}: the range runs from {low} up to {high}, which is below it")
    count = int((high - low) / step) + 1
    if count > MAX_COMBINATIONS:
        raise SweepError(f"--grid {text!r}: {count:,} values, more than {MAX_COMBINATIONS:,}")
    integral = all(n == n.to_integral_value() for n in (low, high, step))
    return tuple(_value(low + i * step, integral) for i in range(count))  # exact: Decimal, no float drift


def _list(text: str, body: str) -> tuple[Value, ...]:
    values: list[Value] = []
    for item in (i.strip() for i in body.split(",")):
        if not item:
            raise SweepError(f"--grid {text!r}: an empty value; expected {GRID_SYNTAX}")
        if _WORD.fullmatch(item):
            values.append(item)
        else:
            number = _number(item, text)
            values.append(_value(number, number == number.to_integral_value() and "." not in item))
    if len(set(values)) != len(values):
        raise SweepError(f"--grid {text!r}: a value is listed twice")
    return tuple(values)


def parse_grid(text: str) -> Grid:
    name, sep, body = text.partition("=")
    name = name.strip()
    if not sep or not body.strip():
        raise SweepError(f"--grid {text!r}: expected {GRID_SYNTAX}")
    if not _NAME.fullmatch(name):
        raise SweepError(f"--grid {text!r}: {name!r} is not a parameter name (letters, digits, _)")
    return Grid(name, _range(text, body) if ".." in body else _list(text, body))


def parse_grids(texts: Sequence[str]) -> list[Grid]:
    grids = [parse_grid(t) for t in texts]
    names = [g.name for g in grids]
    for name in names:
        if names.count(name) > 1:
            raise SweepError(f"--grid {name}: given twice")
    return grids


_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Mod: operator.mod}
_ALLOWED = (ast.Expression, ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
            ast.BinOp, ast.Name, ast.Load, ast.Constant, *_COMPARE, *_ARITHMETIC)


@dataclass(frozen=True)
class Constraint:
    text: str
    tree: ast.expr

    def holds(self, params: Params) -> bool:
        try:
            return bool(_evaluate(self.tree, params))
        except (TypeError, ZeroDivisionError) as exc:
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            raise SweepError(f"--constraint {self.text!r} cannot be evaluated at {shown}: {exc}") from None


def _evaluate(node: ast.expr, params: Params) -> object:
    """The value of a checked tree (`parse_constraint` let only _ALLOWED nodes through)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return params[node.id]
    if isinstance(node, ast.BinOp):
        return _ARITHMETIC[type(node.op)](_evaluate(node.left, params), _evaluate(node.right, params))
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, params)
        return not value if isinstance(node.op, ast.Not) else -value if isinstance(node.op, ast.USub) else +value  # type: ignore[operator]
    if isinstance(node, ast.BoolOp):
        values = (_evaluate(v, params) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    assert isinstance(node, ast.Compare)
    left = _evaluate(node.left, params)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _evaluate(right_node, params)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def parse_constraint(text: str, names: Sequence[str]) -> Constraint:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SweepError(f"--constraint {text!r}: not an expression ({exc.msg}); write e.g. 'fast < slow'") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise SweepError(f"--constraint {text!r}: {type(node).__name__.lower()} is not allowed; comparisons, "
                             "and/or/not, + - * / %, numbers and grid names only")
        if isinstance(node, ast.Name) and node.id not in names:
            raise SweepError(f"--constraint {text!r}: {node.id!r} is not a grid parameter "
                             f"(the grid has: {', '.join(names)})")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, int | float
                                                                                                  | str)):
            raise SweepError(f"--constraint {text!r}: {node.value!r} is not a number or word")
    if not isinstance(tree.body, ast.Compare | ast.BoolOp) and not (
            isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)):
        raise SweepError(f"--constraint {text!r}: not a condition; write a comparison such as 'fast < slow'")
    return Constraint(text, tree.body)


def combinations(grids: Sequence[Grid], constraints: Sequence[Constraint]) -> tuple[list[Params], int]:
    """The grid's combinations that meet every constraint, in grid order, and how many all of them are."""
    total = 1
    for g in grids:
        total *= len(g.values)
    if total > MAX_COMBINATIONS:
        raise SweepError(f"the grid has {total:,} combinations, more than {MAX_COMBINATIONS:,}")
    names = [g.name for g in grids]
    every = (dict(zip(names, values, strict=True)) for values in itertools.product(*(g.values for g in grids)))
    return [p for p in every if all(c.holds(p) for c in constraints)], total


@dataclass(frozen=True)
class Template:
    """A strategies YAML with `{name}` placeholders."""

    text: str
    source: str

    @property
    def placeholders(self) -> list[str]:
        seen = _PLACEHOLDER.findall(_COMMENT.sub("", self.text))
        return sorted(set(seen), key=seen.index)

    def check(self, names: Sequence[str]) -> None:
        found = self.placeholders
        for name in names:
            if name not in found:
                have = ", ".join(f"{{{p}}}" for p in found) or "none"
                raise SweepError(f"--grid {name}: {self.source} has no {{{name}}} placeholder (its placeholders: "
                                 f"{have}); write e.g. 'fast: sma({{{name}}})' where the value goes")
        for name in found:
            if name not in names:
                raise SweepError(f"{self.source}: placeholder {{{name}}} has no --grid {name}=...")

    def render(self, params: Params) -> str:
        return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), self.text)


def describe(params: Params) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


__all__ = ["Constraint", "Grid", "Params", "SweepError", "Template", "Value", "combinations", "describe",
           "parse_constraint", "parse_grid", "parse_grids"]
