"""Chart test harness: each profile is rendered once per session and shared by every test.

`rendered(profile_id)` returns an `eafix.platform.render.Rendered` (select/one/kinds helpers);
`render_with(values)` renders eafix-trading with chart defaults plus `values` (not cached).
Set HELM_BIN to run every render through a real `helm template` instead of the embedded engine.
"""

from __future__ import annotations

from functools import cache

import pytest

from eafix.platform.profiles import CHARTS, Profile, profiles
from eafix.platform.render import Rendered, render

TRADING = CHARTS / "eafix-trading"
PROFILES: list[Profile] = profiles("eafix-trading")
PROFILE_IDS = [p.id for p in PROFILES]
# Every chart's profiles (eafix-infra and eafix-apps too); render_profile() takes any of their ids.
CHART_NAMES = ("eafix-trading", "eafix-infra", "eafix-apps")
ALL_PROFILES: list[Profile] = [p for chart in CHART_NAMES for p in profiles(chart)]
SERVICES = [
    "gui-gateway", "data-ingestor", "indicator-engine", "signal-generator", "risk-manager",
    "execution-engine", "calendar-ingestor", "reentry-matrix-svc", "reporter", "compliance-monitor",
]
PORTS = {
    "gui-gateway": 8080, "data-ingestor": 8081, "indicator-engine": 8082, "signal-generator": 8083,
    "risk-manager": 8084, "execution-engine": 8085, "calendar-ingestor": 8086,
    "reentry-matrix-svc": 8087, "reporter": 8088, "compliance-monitor": 9201,
}


@cache
def render_profile(profile_id: str) -> Rendered:
    profile = next(p for p in ALL_PROFILES if p.id == profile_id)
    return render(profile.chart_dir, profile.values_files)


@pytest.fixture(params=PROFILE_IDS)
def profile_render(request) -> Rendered:
    """Parametrizes a test over every eafix-trading profile."""
    return render_profile(request.param)


@pytest.fixture
def defaults() -> Rendered:
    return render_profile("eafix-trading:defaults")


@pytest.fixture
def render_with():
    def _render(values: dict | None = None, files=(), **kw) -> Rendered:
        return render(TRADING, files, values or {}, **kw)
    return _render


def pod_spec(obj: dict) -> dict:
    """The pod spec of a workload or a bare Pod."""
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_templates(r: Rendered) -> list[tuple[dict, dict]]:
    """(object, pod spec) of every pod-bearing object."""
    kinds = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
    return [(o, pod_spec(o)) for o in r.objects if o["kind"] in kinds]
