"""The charts' README parameter tables (ci/gen_chart_readme.py) and the README facts tied to values."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import gen_chart_readme as gen
import pytest
import yaml

from eafix.platform.render import RenderError, render

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ci" / "gen_chart_readme.py"
TRADING = REPO / "charts" / "eafix-trading"
SERVICE = TRADING / "charts" / "eafix-service"
CHARTS = [pytest.param(TRADING, id="eafix-trading"), pytest.param(SERVICE, id="eafix-service")]




def _run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, check=False)


def _rows(text: str) -> list[str]:
    """The parameter rows (of a README: those between the markers)."""
    if gen.START in text:
        text = text.split(gen.START, 1)[1].split(gen.END, 1)[0]
    return [line for line in text.splitlines() if line.startswith("| `")]


# --- the committed READMEs -----------------------------------------------------------------------

@pytest.mark.parametrize("chart", CHARTS)
def test_committed_readme_is_not_stale(chart: Path):
    readme = chart / "README.md"
    assert readme.read_text(encoding="utf-8") == gen.render_readme(chart), (
        f"{readme.relative_to(REPO)} is stale: run `python ci/gen_chart_readme.py` (make docs)"
    )


def test_check_mode_passes_on_the_repository():
    proc = _run("--check")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("chart", CHARTS)
def test_every_doc_comment_becomes_a_row(chart: Path):
    lines = (chart / "values.yaml").read_text(encoding="utf-8").splitlines()
    comment_lines = [n for n, line in enumerate(lines, start=1) if line.lstrip().startswith("# --")]
    params = gen.parse_values(chart / "values.yaml")
    assert len(params) == len(comment_lines)
    assert [p.line for p in params] == comment_lines
    assert len(_rows((chart / "README.md").read_text(encoding="utf-8"))) == len(comment_lines)


def test_umbrella_rows_of_dashed_service_sections_and_globals():
    rows = {p.key: p for p in gen.parse_values(TRADING / "values.yaml")}
    assert rows["global.image.registry"].default == '"ghcr.io"'
    assert rows["global.redis.port"].type == "int"
    assert rows["reentry-matrix-svc"].type == "object"
    assert rows["compliance-monitor"].default.startswith('{"enabled":true,"port":9201,')
    assert rows["tests.image.repository"].default == '""'


# --- a synthetic values.yaml ---------------------------------------------------------------------

SYNTHETIC = """\
# A plain comment above nothing documented.

# -- Top-level string.
name: demo
web-frontend:
  # -- Port of the front end.
  port: 8080
  # -- Resources as flow maps.
  resources: {requests: {cpu: 200m}, limits: {cpu: 500m}}
  # -- Peers as a flow list.
  peers: [api-gateway, "risk-manager"]
  undocumented: true
  nested:
    deeper:
      # -- A description that goes on
      # over a second line
      #
      # and a third.
      enabled: false
  # -- Ratio of something.
  ratio: 0.25
# -- Node labels; the key below contains dots.
nodeSelector:
  # -- Role label.
  "kubernetes.io/role": worker
ports:
  # -- The entry of port 80.
  80: http
# -- Nothing set.
empty:
# -- A list of maps.
constraints:
  - maxSkew: 1
    topologyKey: zone
script: |
  # -- text of a block scalar, not a comment
  echo hi
# -- Spread over lines.
flow: {a: 1,
  b: [x, y]}
# -- After the multi-line flow map.
after: ~
# -- Long map, folded.
long:
  alpha: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
  beta: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  gamma: "cccccccccccccccccccccccccccccccccccccccc"
# -- Pipe | in a description.
pipe: "a|b"
"""

EXPECTED_ROWS = [
    '| `name` | string | `"demo"` | Top-level string. |',
    "| `web-frontend.port` | int | `8080` | Port of the front end. |",
    '| `web-frontend.resources` | object | `{"requests":{"cpu":"200m"},"limits":{"cpu":"500m"}}` '
    "| Resources as flow maps. |",
    '| `web-frontend.peers` | list | `["api-gateway","risk-manager"]` | Peers as a flow list. |',
    "| `web-frontend.nested.deeper.enabled` | bool | `false` "
    "| A description that goes on over a second line and a third. |",
    "| `web-frontend.ratio` | float | `0.25` | Ratio of something. |",
    '| `nodeSelector` | object | `{"kubernetes.io/role":"worker"}` '
    "| Node labels; the key below contains dots. |",
    '| `nodeSelector.kubernetes\\.io/role` | string | `"worker"` | Role label. |',
    '| `ports.80` | string | `"http"` | The entry of port 80. |',
    "| `empty` | null | `null` | Nothing set. |",
    '| `constraints` | list | `[{"maxSkew":1,"topologyKey":"zone"}]` | A list of maps. |',
    '| `flow` | object | `{"a":1,"b":["x","y"]}` | Spread over lines. |',
    "| `after` | null | `null` | After the multi-line flow map. |",
    '| `long` | object | `{"alpha":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",'
    '"beta":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",…}` | Long map, folded. |',
    '| `pipe` | string | `"a\\|b"` | Pipe \\| in a description. |',
]


def test_synthetic_values_give_the_expected_rows(tmp_path: Path):
    values = tmp_path / "values.yaml"
    values.write_text(SYNTHETIC, encoding="utf-8")
    table = gen.render_table(gen.parse_values(values))
    assert _rows(table) == EXPECTED_ROWS
    assert table.splitlines()[2:4] == ["| Key | Type | Default | Description |",
                                       "|-----|------|---------|-------------|"]
    assert "first entries and then `…`" in table  # the folding is explained under the table


def test_generation_is_deterministic(tmp_path: Path):
    values = tmp_path / "values.yaml"
    values.write_text(SYNTHETIC, encoding="utf-8")
    assert gen.render_table(gen.parse_values(values)) == gen.render_table(gen.parse_values(values))


# --- errors ----------------------------------------------------------------------------------------

ORPHANS = {
    "blank line before the key": ("a: 1\n# -- orphan\n\nb: 2\n", 2),
    "end of file": ("a: 1\n# -- trailing\n", 2),
    "another description": ("# -- first\n# -- second\na: 1\n", 1),
    "a list item": ("list:\n  # -- an item\n  - x\n", 2),
    "a key inside a list": ("list:\n  - name: a\n    # -- inside a list\n    value: 1\n", 3),
    "a key of another level": ('image:\n  tag: "1"\n  # -- of a removed key\nother: 2\n', 3),
    "a path the parsed YAML lacks": ("a:\n  # -- shadowed\n  b: 1\na:\n  c: 2\n", 2),
}


@pytest.mark.parametrize("text,line", ORPHANS.values(), ids=ORPHANS.keys())
def test_orphan_comment_is_an_error(tmp_path: Path, text: str, line: int):
    values = tmp_path / "values.yaml"
    values.write_text(text, encoding="utf-8")
    with pytest.raises(gen.DocError) as exc:
        gen.parse_values(values)
    assert exc.value.problems[0].startswith(f"{values}:{line}: ")


# --- the command line ------------------------------------------------------------------------------

def _chart(tmp_path: Path, values: str) -> Path:
    chart = tmp_path / "demo"
    chart.mkdir()
    (chart / "values.yaml").write_text(values, encoding="utf-8")
    (chart / "README.md").write_text(
        f"# demo\n\nHand-written.\n\n{gen.START}\nold table\n{gen.END}\n\nFooter.\n", encoding="utf-8"
    )
    return chart


def test_cli_check_regenerate_and_keep_the_hand_written_text(tmp_path: Path):
    chart = _chart(tmp_path, "# -- Port.\nport: 80\n")
    readme = chart / "README.md"

    stale = _run("--check", chart)
    assert stale.returncode == 1
    assert str(readme) in stale.stderr

    assert _run(chart).returncode == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(f"# demo\n\nHand-written.\n\n{gen.START}\n")
    assert text.endswith(f"{gen.END}\n\nFooter.\n")
    assert "| `port` | int | `80` | Port. |" in text
    assert "old table" not in text
    assert _run("--check", chart).returncode == 0


def test_cli_orphan_exits_2_with_file_and_line(tmp_path: Path):
    chart = _chart(tmp_path, "port: 80\n# -- orphan\n")
    proc = _run("--check", chart)
    assert proc.returncode == 2
    assert f"{chart / 'values.yaml'}:2:" in proc.stderr


def test_missing_markers_are_an_error(tmp_path: Path):
    chart = _chart(tmp_path, "# -- Port.\nport: 80\n")
    (chart / "README.md").write_text("# demo\n", encoding="utf-8")
    assert _run(chart).returncode == 2


# --- hand-written parts that restate values -------------------------------------------------------

def _section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_services_table_matches_values():
    values = yaml.safe_load((TRADING / "values.yaml").read_text(encoding="utf-8"))
    section = _section((TRADING / "README.md").read_text(encoding="utf-8"), "Services")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| Service")]
    ports = {row[0]: int(row[1]) for row in rows}
    services = [k for k, v in values.items() if isinstance(v, dict) and "port" in v]
    assert ports == {s: values[s]["port"] for s in services}


def test_values_validation_example_is_what_the_chart_prints(tmp_path: Path):
    section = _section((TRADING / "README.md").read_text(encoding="utf-8"), "Values validation")
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    overlay = tmp_path / "broken.yaml"
    overlay.write_text(example, encoding="utf-8")
    with pytest.raises(RenderError) as exc:
        render(TRADING, [overlay])

    def norm(s: str) -> str:
        return "\n".join(line.rstrip() for line in s.strip().splitlines())

    assert norm(shown) in norm(str(exc.value))
