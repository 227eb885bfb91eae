"""Chart test harness: each profile is rendered once per session and shared by every test.

`rendered(profile_id)` returns an `eafix.platform.render.Rendered` (select/one/kinds helpers);
`render_with(values)` renders eafix-trading with chart defaults plus `values` (not cached).
Set HELM_BIN to run every render through a real `helm template` instead of the embedded engine.
"""

from __future__ import annotations

from functools import cache

import pytest

from eafix import services as catalogue
from eafix.platform.profiles import CHARTS, Profile, profiles
from eafix.platform.render import Rendered, render

TRADING = CHARTS / "eafix-trading"
PROFILES: list[Profile] = profiles("eafix-trading")
PROFILE_IDS = [p.id for p in PROFILES]
# Every chart's profiles (eafix-infra and eafix-apps too); render_profile() takes any of their ids.
CHART_NAMES = ("eafix-trading", "eafix-infra", "eafix-apps")
ALL_PROFILES: list[Profile] = [p for chart in CHART_NAMES for p in profiles(chart)]
# The services as the catalogue (eafix.services) lists them, in pipeline order, and their ports.
SERVICES = list(catalogue.NAMES)
PORTS = {s.name: s.port for s in catalogue.SERVICES}


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


