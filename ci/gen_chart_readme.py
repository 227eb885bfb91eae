#!/usr/bin/env python3
"""Generate the parameter table of each chart's README.md from the `# --` comments of its values.yaml.

A comment line starting with `# --` directly above a key (continued by any further `#` lines
before that key) describes the key. The lines of values.yaml give the key's full dotted path (by
indentation); the parsed YAML gives its default and type. The table replaces whatever stands
between `<!-- params:start -->` and `<!-- params:end -->` in README.md; the rest of the README is
hand-written and kept as it is.

    python ci/gen_chart_readme.py            # rewrite the README of every chart
    python ci/gen_chart_readme.py --check    # exit 1 naming every stale README
    python ci/gen_chart_readme.py CHART_DIR  # only that chart

Exit status 2, with `file:line: problem` on stderr, when a `# --` comment belongs to no key, its
key cannot be addressed by a dotted path (inside a list) or does not exist in the parsed values,
or a README lacks the markers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CHART_DIRS = (
    REPO / "charts" / "eafix-trading",
    REPO / "charts" / "eafix-trading" / "charts" / "eafix-service",
    REPO / "charts" / "eafix-infra",
    REPO / "charts" / "eafix-apps",
)
START = "<!-- params:start -->"
END = "<!-- params:end -->"
# A default whose compact JSON is longer than this is folded to its leading entries plus `…`.
FOLD_AT = 120
FOLD_MARK = "…"

_DOC = re.compile(r"^(?P<indent> *)# --(?:[ \t]+(?P<text>.*?))?\s*$")
_COMMENT = re.compile(r"^ *#(?P<text>.*)$")
_KEY = re.compile(
    r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\[\]{},&*!|>%@`?-][^\n]*?|[?-]\S[^\n]*?)"""
    r"""[ \t]*:(?:[ \t]+(?P<value>.*))?$"""
)
_BLOCK_SCALAR = re.compile(r"^[|>][0-9+-]*[ \t]*(?:#.*)?$")
_SEQ = object()  # a path element standing for "an item of a list"


class DocError(Exception):
    """The documentation comments of a values file (or a README's markers) are unusable."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Param:
    """One documented key."""

    path: tuple[str, ...]
    description: str
    value: Any
    line: int  # line of the `# --` comment in values.yaml (1-based)

    @property
    def key(self) -> str:
        """The dotted path as `helm --set` takes it (`.`, `,`, `=`, `[` and `\\` escaped)."""
        return ".".join(re.sub(r"([\\.,=\[])", r"\\\1", part) for part in self.path)

    @property
    def type(self) -> str:
        return type_name(self.value)

    @property
    def default(self) -> str:
        return render_default(self.value)


@dataclass
class _Frame:
    col: int
    path: tuple[Any, ...]  # keys as parsed (`_SEQ` for a list item)
    labels: tuple[str, ...]  # keys as written, quotes removed
    item: bool  # a list item ("- ") rather than a mapping key


@dataclass
class _Pending:
    line: int
    col: int
    text: list[str]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _strip_props(value: str) -> str:
    """Drop leading anchors (`&a`) and tags (`!!map`) of a value."""
    while value[:1] in ("&", "!"):
        parts = value.split(None, 1)
        value = parts[1] if len(parts) > 1 else ""
    return value


def _flow_depth(text: str, depth: int = 0) -> int:
    """Bracket depth after `text` (quoted strings and comments skipped)."""
    quote = ""
    prev = " "
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if quote == '"' and c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#" and prev in " \t":
            break
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        prev = c
        i += 1
    return depth


def _key_object(text: str) -> Any:
    """The key as the YAML parser sees it (quotes removed; `1` an int, `true` a bool)."""
    try:
        loaded = yaml.safe_load(f"{text}: 0")
    except yaml.YAMLError:
        return text
    if isinstance(loaded, dict) and len(loaded) == 1:
        return next(iter(loaded))
    return text


def _key_label(obj: Any, text: str) -> str:
    return obj if isinstance(obj, str) else text


def _load(values_file: Path, where: str) -> tuple[str, dict]:
    text = values_file.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DocError([f"{where}:{line}: not valid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DocError([f"{where}:1: a values file must hold a mapping"])
    return text, data


@dataclass
class _Found:
    path: tuple[Any, ...]
    labels: tuple[str, ...]
    description: str
    doc_line: int
    key_line: int


class _Scanner:
    """Reads values.yaml line by line: the indentation gives each key's path, a `# --` comment the
    description of the key below it. Scalars spanning lines (block, flow, plain) are skipped."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[str] = []
        self.found: list[_Found] = []
        self.stack: list[_Frame] = []
        self.pending: _Pending | None = None
        self.block_col: int | None = None  # inside a block scalar of a key at this column
        self.cont_col: int | None = None  # continuation lines of a scalar of a node at this column
        self.flow = 0  # open brackets of a flow collection spanning lines

    def orphan(self, why: str) -> None:
        assert self.pending is not None
        self.problems.append(f"{self.where}:{self.pending.line}: `# --` comment {why}")
        self.pending = None

    def scan(self, text: str) -> None:
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.rstrip()
            col = len(line) - len(line.lstrip(" "))
            if not self._inside_scalar(line, col) and not self._comment_or_blank(line, lineno, col):
                self._node(line, lineno, col)
        if self.pending is not None:
            self.orphan("is at the end of the file, with no key below it")

    def _inside_scalar(self, line: str, col: int) -> bool:
        if self.block_col is not None:
            if not line or col > self.block_col:
                return True
            self.block_col = None
        if self.flow > 0:
            self.flow = _flow_depth(line, self.flow)
            return True
        return False

    def _comment_or_blank(self, line: str, lineno: int, col: int) -> bool:
        if not line:
            if self.pending is not None:
                self.orphan("is followed by a blank line instead of its key")
            return True
        doc = _DOC.match(line)
        if doc:
            if self.pending is not None:
                self.orphan("is followed by another `# --` comment instead of its key")
            self.pending = _Pending(lineno, col, [doc.group("text") or ""])
            return True
        comment = _COMMENT.match(line)
        if comment:
            if self.pending is not None:
                self.pending.text.append(comment.group("text").strip())
            return True
        if self.cont_col is not None and col > self.cont_col:
            return True  # a multi-line scalar goes on
        self.cont_col = None
        return col == 0 and line in ("---", "...") or line.startswith("--- ") or line.startswith("%")

    def _parent(self) -> tuple[tuple[Any, ...], tuple[str, ...]]:
        return (self.stack[-1].path, self.stack[-1].labels) if self.stack else ((), ())

    def _items(self, content: str, col: int) -> tuple[str, int, int | None]:
        """Consume leading `- ` list markers: (rest of the line, its column, column of the first marker)."""
        item_col: int | None = None
        while content[:1] == "-" and (len(content) == 1 or content[1] in " \t"):
            while self.stack and (self.stack[-1].col > col or (self.stack[-1].col == col and self.stack[-1].item)):
                self.stack.pop()
            parent, parent_labels = self._parent()
            self.stack.append(_Frame(col, (*parent, _SEQ), (*parent_labels, "[]"), item=True))
            if item_col is None:
                item_col = col
            rest = content[1:]
            content = rest.lstrip(" \t")
            col += 1 + len(rest) - len(content)
        return content, col, item_col

    def _value(self, value: str, block_col: int, cont_col: int) -> None:
        """Note how a scalar value goes on below its line (flow collection, block scalar or plain)."""
        if value[:1] in "[{":
            self.flow = _flow_depth(value)
        elif _BLOCK_SCALAR.match(value):
            self.block_col = block_col
        else:
            self.cont_col = cont_col

    def _node(self, line: str, lineno: int, col: int) -> None:
        content, col, item_col = self._items(line[col:], col)
        if self.pending is not None and item_col is not None:
            self.orphan("documents a list item; only mapping keys can be documented")
        if not content or content.startswith("#"):
            return
        match = _KEY.match(content)
        if match is None:  # a scalar or flow list item; nothing can nest under it
            at = item_col if item_col is not None else col
            self._value(_strip_props(content), at if item_col is not None else col - 1, at)
            if self.pending is not None:
                self.orphan("is not followed by a key")
            return
        self._key(match, lineno, col)

    def _key(self, match: re.Match[str], lineno: int, col: int) -> None:
        while self.stack and self.stack[-1].col >= col:
            self.stack.pop()
        key_text = match.group("key")
        key_obj = _key_object(key_text)
        parent, parent_labels = self._parent()
        path, label = (*parent, key_obj), _key_label(key_obj, key_text)
        labels = (*parent_labels, label)
        if self.pending is not None:
            self._document(path, labels, parent, lineno, col)
        value = _strip_props((match.group("value") or "").strip())
        if not value or value.startswith("#"):
            self.stack.append(_Frame(col, path, labels, item=False))
        else:
            self._value(value, col, col)

    def _document(self, path: tuple[Any, ...], labels: tuple[str, ...], parent: tuple[Any, ...], lineno: int,
                  col: int) -> None:
        pending, label = self.pending, labels[-1]
        assert pending is not None
        description = " ".join(t for t in pending.text if t)
        if pending.col != col:
            self.orphan(f"at column {pending.col + 1} does not line up with the key `{label}` below it "
                        f"(column {col + 1})")
        elif _SEQ in parent:
            self.orphan(f"documents `{label}` inside a list, which has no dotted path")
        elif not description:
            self.orphan(f"of `{label}` has no text")
        else:
            self.found.append(_Found(path, labels, description, pending.line, lineno))
            self.pending = None


def _lookup(data: dict, found: _Found, where: str) -> tuple[Any, str | None]:
    """The parsed value at `found.path`, or a problem naming the first missing key."""
    node: Any = data
    for depth, part in enumerate(found.path):
        if not isinstance(node, dict) or part not in node:
            missing = ".".join(str(x) for x in found.labels[: depth + 1])
            return None, (f"{where}:{found.doc_line}: `# --` comment of `{'.'.join(found.labels)}` (line "
                          f"{found.key_line}): `{missing}` does not exist in the parsed values")
        node = node[part]
    return node, None


def parse_values(values_file: str | Path) -> list[Param]:
    """Every documented key of a values.yaml, in file order. Raises DocError."""
    values_file = Path(values_file)
    where = _display(values_file)
    text, data = _load(values_file, where)
    scanner = _Scanner(where)
    scanner.scan(text)
    problems, params = scanner.problems, []
    seen: dict[tuple[Any, ...], int] = {}
    for found in scanner.found:
        value, problem = _lookup(data, found, where)
        if problem is not None:
            problems.append(problem)
        elif found.path in seen:
            problems.append(f"{where}:{found.doc_line}: `{'.'.join(found.labels)}` is already documented "
                            f"at line {seen[found.path]}")
        else:
            seen[found.path] = found.doc_line
            params.append(Param(tuple(found.labels), found.description, value, found.doc_line))
    if problems:
        raise DocError(problems)
    return params


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (str, date, bytes)):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, (dict, set)):
        return "object"
    return type(value).__name__


def _json_default(obj: Any) -> Any:
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    if isinstance(obj, set):
        return {str(k): None for k in sorted(obj, key=str)}
    raise TypeError(f"cannot render {type(obj).__name__}")


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def render_default(value: Any) -> str:
    """Compact JSON; a map or list longer than FOLD_AT keeps its leading entries, then `…`."""
    full = to_json(value)
    if len(full) <= FOLD_AT or not isinstance(value, (dict, list)):
        return full
    if isinstance(value, dict):
        entries = [to_json({k: v})[1:-1] for k, v in value.items()]
        opening, closing = "{", "}"
    else:
        entries = [to_json(v) for v in value]
        opening, closing = "[", "]"
    kept: list[str] = []
    size = len(opening) + len(FOLD_MARK) + len(closing)
    for entry in entries:
        if size + len(entry) + 1 > FOLD_AT:
            break
        kept.append(entry)
        size += len(entry) + 1
    return opening + ",".join([*kept, FOLD_MARK]) + closing


def _code(text: str) -> str:
    """`text` as a Markdown code span inside a table cell."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(params: Iterable[Param], source: str = "values.yaml") -> str:
    """The generated block between the markers (markers excluded)."""
    params = list(params)
    lines = [
        f"<!-- Generated by ci/gen_chart_readme.py from the `# --` comments of {source}; "
        "edit those, then run `make docs`. -->",
        "",
        "| Key | Type | Default | Description |",
        "|-----|------|---------|-------------|",
    ]
    folded = False
    for p in params:
        default = p.default
        folded = folded or default != to_json(p.value)
        lines.append(f"| {_code(p.key)} | {p.type} | {_code(default)} | {_cell(p.description)} |")
    if folded:
        lines += [
            "",
            f"A default longer than {FOLD_AT} characters shows its first entries and then `{FOLD_MARK}`; "
            f"{source} has the whole value.",
        ]
    return "\n".join(lines) + "\n"


def replace_block(readme_text: str, block: str, where: str = "README.md") -> str:
    """`readme_text` with the part between the markers replaced by `block`."""
    starts = [m.start() for m in re.finditer(re.escape(START), readme_text)]
    ends = [m.start() for m in re.finditer(re.escape(END), readme_text)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        line = readme_text.count("\n", 0, starts[0]) + 1 if starts else 1
        raise DocError([f"{where}:{line}: needs exactly one `{START}` followed by one `{END}`"])
    head = readme_text[: starts[0] + len(START)]
    tail = readme_text[ends[0]:]
    return f"{head}\n{block}{tail}"


def render_readme(chart_dir: str | Path) -> str:
    """The README.md text `chart_dir` should have: its own text with a fresh parameter table."""
    chart_dir = Path(chart_dir)
    params = parse_values(chart_dir / "values.yaml")
    readme = chart_dir / "README.md"
    if not readme.is_file():
        raise DocError([f"{_display(readme)}:1: missing (it needs the `{START}` / `{END}` markers)"])
    return replace_block(readme.read_text(encoding="utf-8"), render_table(params), _display(readme))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a README is not what would be generated")
    parser.add_argument("charts", nargs="*", type=Path,
                        help="chart directories (default: every chart)")
    args = parser.parse_args(argv)

    problems: list[str] = []
    expected: dict[Path, str] = {}
    for chart in args.charts or CHART_DIRS:
        try:
            expected[chart / "README.md"] = render_readme(chart)
        except DocError as exc:
            problems += exc.problems
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2

    stale = 0
    for readme, text in expected.items():
        if readme.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale += 1
            print(f"{_display(readme)} is stale: run `python ci/gen_chart_readme.py` (make docs)",
                  file=sys.stderr)
        else:
            readme.write_text(text, encoding="utf-8")
            print(f"wrote {_display(readme)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
