"""The package's shape, checked on its import graph:

- each service process loads only its own code: importing `eafix.<service>.service` imports no other
  service's package (checked in a fresh interpreter, on `sys.modules`), and no dataframe/TA/plotting
  library beyond its extra (indicator-engine: polars, numpy, TA-Lib; reporter: polars, plotly);
- imports go one way through the layers  kernel <- runtime <- contracts <- domains <- adapters <- cli:
  a module never imports a module of a higher layer, and a service package never imports another.

Layers: kernel = `eafix`, `eafix.services`, `eafix.instruments`, `eafix.timestamps` (shared facts,
importing nothing of eafix); runtime = `eafix.runtime.*`; contracts = `eafix.contracts.*`; domains = the
pure modules of a service package and the shared report module `eafix.reporting.*` (backtest and
reporter both render with it; it belongs to no service, so any package may import it); adapters = a
service package's `stage`, `app`, `service`,
`repository`, `gateway` and `mt4_bridge` modules (and gui-gateway's `jwks`, `peers`, `guards`,
`security`, `bus_status`), and `eafix.backtest.*`; cli = `eafix.cli`,
`eafix.__main__`, `eafix.backtest.cli`, `eafix.backtest.optimize_cli`, the chart tooling `eafix.platform.*`
and the platform on one machine `eafix.local.*` (throwaway servers and `eafix up`, which starts the
services as processes).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from eafix import services

ROOT = Path(__file__).resolve().parents[2] / "services"
PACKAGES = {spec.module for spec in services.SERVICES if (ROOT / "eafix" / spec.module).is_dir()}
ADAPTER_MODULES = {"stage", "app", "service", "repository", "gateway", "mt4_bridge",
                   "jwks", "peers", "guards", "security", "bus_status",
                   "ws_routes", "ui_routes", "feed_reader"}  # gui-gateway's HTTP/WebSocket/Redis adapters
CLI_MODULES = {"eafix.cli", "eafix.__main__", "eafix.backtest.cli", "eafix.backtest.optimize_cli"}
KERNEL = {"eafix", "eafix.services", "eafix.instruments", "eafix.timestamps"}
LAYERS = ("kernel", "runtime", "contracts", "domains", "adapters", "cli")
HEAVY = ("polars", "numpy", "talib", "plotly", "matplotlib")
# which of HEAVY a service process may load (the extras of pyproject.toml); none for the others
HEAVY_ALLOWED = {"indicator_engine": {"polars", "numpy", "talib"}, "reporter": {"polars", "plotly"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted((ROOT / "eafix").rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    if module in KERNEL:
        return "kernel"
    if module in CLI_MODULES or parts[1] in ("platform", "local"):
        return "cli"
    if parts[1] == "runtime":
        return "runtime"
    if parts[1] == "contracts":
        return "contracts"
    if parts[1] == "backtest":
        return "adapters"
    if parts[1] == "reporting":
        return "domains"
    if parts[1] in PACKAGES:
        return "adapters" if len(parts) > 2 and parts[2] in ADAPTER_MODULES else "domains"
    raise AssertionError(f"{module} belongs to no layer: add it to the rules in this test's docstring")


def imports(path: Path) -> set[str]:
    """The eafix modules `path` imports (at module level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found.update(n for n in names if n in MODULES)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
    return {m for m in found if m.startswith("eafix")}


def test_every_module_has_a_layer():
    assert {module: layer(module) for module in MODULES}  # raises for a module without one
    assert {"data_ingestor", "indicator_engine", "signal_generator", "risk_manager", "execution_engine"} <= PACKAGES


def upward_imports(modules: dict[str, Path]) -> list[str]:
    found = []
    for module, path in modules.items():
        rank = LAYERS.index(layer(module))
        for target in imports(path):
            if LAYERS.index(layer(target)) > rank:
                found.append(f"{module} ({layer(module)}) imports {target} ({layer(target)})")
    return found


def package(module: str) -> str:
    """The second part of a module's name: its service package, `runtime`, ... ('' for `eafix`)."""
    return module.split(".")[1] if "." in module else ""


def crossing_imports(modules: dict[str, Path]) -> list[str]:
    found = []
    for module, path in modules.items():
        own = package(module)
        if own in PACKAGES:
            found += [f"{module} imports {t}" for t in sorted(imports(path)) if package(t) in PACKAGES - {own}]
    return found


def test_no_module_imports_a_higher_layer():
    assert upward_imports(MODULES) == []


def test_no_service_package_imports_another():
    assert crossing_imports(MODULES) == []


def test_the_checks_bite(tmp_path):
    runtime = tmp_path / "runtime_module.py"
    runtime.write_text("from eafix.risk_manager.engine import RiskEngine\n")
    domain = tmp_path / "domain_module.py"
    domain.write_text("def f():\n    from eafix.execution_engine import stage\n")
    assert upward_imports({"eafix.runtime.fake": runtime}) == [
        "eafix.runtime.fake (runtime) imports eafix.risk_manager.engine (domains)"]
    assert upward_imports({"eafix.risk_manager.fake": domain}) == [
        "eafix.risk_manager.fake (domains) imports eafix.execution_engine.stage (adapters)"]
    assert crossing_imports({"eafix.risk_manager.fake": domain}) == [
        "eafix.risk_manager.fake imports eafix.execution_engine",
        "eafix.risk_manager.fake imports eafix.execution_engine.stage"]


@pytest.mark.parametrize("service", sorted(p for p in PACKAGES if (ROOT / "eafix" / p / "service.py").exists()))
def test_a_service_process_loads_only_its_own_package(service):
    code = (f"import json, sys; import eafix.{service}.service; "
            "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    others = sorted({package_of for m in loaded if (package_of := package(m)) in PACKAGES} - {service})
    assert others == []
    assert f"eafix.{service}.service" in loaded  # the check ran on a real import
    assert sorted({m.split(".")[0] for m in loaded} & set(HEAVY) - HEAVY_ALLOWED.get(service, set())) == []
    assert "eafix.platform" not in loaded and "eafix.backtest" not in loaded


def test_the_backtest_replays_are_the_only_modules_that_wire_stages():
    wiring = {module for module, path in MODULES.items()
              if len({package(t) for t in imports(path)} & PACKAGES) > 1}
    # the event-driven replay (every stage), the batch path (engines and a subset of the stages) and
    # its whole-series evaluation (indicator-engine's computations, signal-generator's strategies)
    assert wiring == {"eafix.backtest.runner", "eafix.backtest.batch", "eafix.backtest.vectorized"}
    stages = {f"eafix.{p}.stage" for p in PACKAGES if f"eafix.{p}.stage" in MODULES}
    assert stages <= imports(MODULES["eafix.backtest.runner"])
