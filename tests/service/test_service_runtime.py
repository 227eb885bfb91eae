"""The service runtime: ServiceParts' lifecycle in the app's lifespan, the per-service loader and
`eafix openapi`, settings helpers, StageGuard and ActiveReplica.

The helpers the test_service_<name>.py modules share (`ServiceEnv`, `publish`, `read`, `eventually`) are
in service/harness.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import APIRouter

from eafix import cli, services
from eafix.runtime.app import create_app
from eafix.runtime.service import (
    PipelineSettings,
    ServiceParts,
    StageGuard,
    service_module,
    settings_class,
)
from eafix.runtime.settings import SettingsError
from service.harness import eventually, started

pytestmark = pytest.mark.anyio

PIPELINE = ("data-ingestor", "indicator-engine", "signal-generator", "risk-manager", "execution-engine")
BUSINESS_PATHS = {
    "data-ingestor": {"/api/v1/ticks", "/api/v1/prices/latest"},
    "indicator-engine": {"/api/v1/indicators/{symbol}"},
    "signal-generator": {"/api/v1/risk-off", "/api/v1/risk-off/reset", "/api/v1/signals/recent"},
    "risk-manager": {"/api/v1/validate", "/api/v1/position-size", "/api/v1/portfolio"},
    "execution-engine": {"/api/v1/orders", "/api/v1/positions", "/api/v1/positions/{position_id}/close"},
    "calendar-ingestor": {"/api/v1/calendar/import", "/api/v1/calendar/events", "/api/v1/calendar/blackouts",
                          "/api/v1/calendar/imports"},
    "reentry-matrix-svc": {"/api/v1/reentry/decide", "/api/v1/reentry/chains/{trade_id}", "/api/v1/reentry/matrix"},
    "reporter": {"/api/v1/reports/daily-pnl", "/api/v1/reports/summary",
                 "/api/v1/reports/equity.csv", "/api/v1/reports/report.html"},
    "compliance-monitor": {"/webhook/alertmanager", "/api/v1/compliance/audit", "/api/v1/compliance/approvals",
                           "/api/v1/compliance/approvals/{approval_id}", "/api/v1/compliance/policy"},
    "gui-gateway": {"/api/v1/auth/login", "/api/v1/auth/whoami", "/api/v1/trading/{action}", "/api/v1/audit",
                    "/api/v1/system/status", "/api/v1/positions", "/api/v1/trades", "/api/v1/orders",
                    "/api/v1/prices/latest",
                    "/api/v1/indicators/{symbol}", "/api/v1/signals", "/api/v1/risk-off", "/api/v1/risk/portfolio",
                    "/api/v1/calendar/events", "/api/v1/calendar/blackouts",
                    "/api/v1/reentry/chains/{trade_id}", "/api/v1/reentry/matrix", "/api/v1/reports/daily-pnl",
                    "/api/v1/reports/summary", "/api/v1/reports/equity.csv",
                    "/api/v1/reports/report.html", "/api/v1/compliance/audit", "/api/v1/compliance/approvals",
                    "/api/v1/compliance/policy", "/api/v1/compliance/approvals/{approval_id}"},
}
# the services built so far (the others still run the runtime's bare app)
BUILT = (*PIPELINE, "calendar-ingestor", "reentry-matrix-svc", "reporter", "compliance-monitor",
         "gui-gateway")


# --- ServiceParts in the app's lifespan --------------------------------------------------------------

def recording_parts(log: list[str], *, fail_at: str | None = None) -> ServiceParts:
    parts = ServiceParts()

    def step(name: str):
        async def start() -> None:
            if name == fail_at:
                raise RuntimeError(f"{name} cannot start")
            log.append(f"start {name}")

        async def stop() -> None:
            log.append(f"stop {name}")

        return start, stop

    parts.add_step(*step("pool"))
    parts.add_step(*step("restore"))

    def task(name: str):
        stopping = asyncio.Event()

        async def run() -> None:
            log.append(f"run {name}")
            await stopping.wait()
            log.append(f"finish {name}")

        async def stop() -> None:
            stopping.set()

        return run, stop

    parts.add_task("bus", *task("bus"))
    parts.add_task("timer", *task("timer"))
    router = APIRouter(prefix="/api/v1")

    @router.get("/thing")
    async def thing() -> dict[str, str]:
        return {"thing": "ok"}

    parts.routers.append(router)
    return parts


async def test_parts_start_in_order_and_stop_in_reverse_with_tasks_before_steps():
    log: list[str] = []
    spec = services.get("reporter")
    app = create_app(spec, PipelineSettings(name=spec.name), recording_parts(log))
    async with started(app) as client:
        await eventually(lambda: "run timer" in log, "the tasks")
        assert (await client.get("/api/v1/thing")).json() == {"thing": "ok"}
        assert log[:2] == ["start pool", "start restore"]
        log.clear()
    assert log == ["finish timer", "finish bus", "stop restore", "stop pool"]


async def test_a_failing_start_step_undoes_the_started_ones_and_fails_start_up():
    log: list[str] = []
    spec = services.get("reporter")
    app = create_app(spec, PipelineSettings(name=spec.name), recording_parts(log, fail_at="restore"))
    with pytest.raises(RuntimeError, match="restore cannot start"):
        async with started(app):
            pass
    assert log == ["start pool", "stop pool"]  # no task ran, the pool closed again


async def test_a_timer_survives_a_failure_and_finishes_its_run_at_stop():
    calls: list[str] = []
    release = asyncio.Event()

    async def tick() -> None:
        calls.append("call")
        if len(calls) == 1:
            raise RuntimeError("redis down")
        if len(calls) == 3:
            await release.wait()  # in progress when the stop comes
            calls.append("finished")

    parts = ServiceParts()
    parts.every("flush", 0.01, tick)
    await parts.start()
    await eventually(lambda: len(calls) == 3, "three runs (the first failed)")
    stopping = asyncio.create_task(parts.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waits for the run in progress
    release.set()
    await stopping
    assert calls == ["call", "call", "call", "finished"]


# --- the loader and `eafix openapi` -------------------------------------------------------------------------

@pytest.mark.parametrize("name", services.NAMES)
def test_openapi_lists_the_business_routes_without_connecting_anywhere(name, capsys, monkeypatch):
    monkeypatch.setenv("SERVICE_REDIS_URL", "not a url")  # openapi reads no settings...
    monkeypatch.setenv("SERVICE_RISK", "{broken")  # ...not even the service's own
    assert cli.main(["openapi", name]) == 0
    paths = set(json.loads(capsys.readouterr().out)["paths"])
    assert paths == {"/healthz", "/readyz", "/metrics"} | BUSINESS_PATHS.get(name, set())


def test_only_the_built_services_have_a_service_module():
    assert {spec.name for spec in services.SERVICES if service_module(spec) is not None} == set(BUILT)
    assert settings_class(services.get("reporter")).__name__ == "ReporterSettings"
    assert settings_class(services.get("gui-gateway")).__name__ == "GatewaySettings"


def test_serve_stops_on_bad_service_config_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICE_TIMEFRAMES", '["M1", "M2"]')
    assert cli.main(["serve", "indicator-engine"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err == ("eafix serve indicator-engine: SERVICE_TIMEFRAMES: Input should be 'M1', 'M5', 'M15', 'H1', "
                   "'H4' or 'D1' (got 'M2')\n")


def test_bus_settings_name_the_key(monkeypatch):
    monkeypatch.setenv("SERVICE_BUS", '{"lease_ms": 10, "batch": 5, "blok_ms": 1}')
    with pytest.raises(SettingsError) as raised:
        PipelineSettings(name="risk-manager")
    assert str(raised.value) == "SERVICE_BUS: lease_ms: Input should be greater than or equal to 100 (got 10); " \
                                "blok_ms: unknown key"


def test_the_consumer_name_defaults_to_the_pod_name(monkeypatch):
    from eafix.runtime.service import consumer_name

    monkeypatch.setenv("HOSTNAME", "risk-manager-7d9c-x2x")
    assert consumer_name(PipelineSettings(name="risk-manager")) == "risk-manager-7d9c-x2x"
    monkeypatch.setenv("SERVICE_CONSUMER_NAME", "rm-0")
    assert consumer_name(PipelineSettings(name="risk-manager")) == "rm-0"


# --- StageGuard -------------------------------------------------------------------------------------------

async def test_stage_guard_coalesces_reloads_and_reloads_after_a_failed_handler():
    loads: list[int] = []
    gate = asyncio.Event()

    async def reload() -> None:
        loads.append(len(loads))
        await gate.wait()

    guard = StageGuard(reload)
    first = asyncio.create_task(guard.reload())
    await eventually(lambda: loads == [0], "the first reload to start")
    waiting = [asyncio.create_task(guard.reload()) for _ in range(3)]  # requested while it runs
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(first, *waiting)
    assert loads == [0, 1]  # the three waiting requests share one reload that started after them

    handled: list[str] = []

    async def handler(message: str) -> None:
        handled.append(message)
        if message == "boom":
            raise RuntimeError("store failed")

    wrapped = guard.wrap(handler)
    await wrapped("a")
    assert loads == [0, 1]
    with pytest.raises(RuntimeError):
        await wrapped("boom")
    assert guard.stale
    await wrapped("b")  # reloads first
    assert loads == [0, 1, 2] and not guard.stale
    assert handled == ["a", "boom", "b"]
