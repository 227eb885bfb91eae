"""The eafix-trading profiles and their rendered objects (embedded engine), for the cluster tests."""

from __future__ import annotations

from functools import cache

from eafix.platform.profiles import Profile, profiles
from eafix.platform.render import render

PROFILES: list[Profile] = profiles("eafix-trading")


@cache
def _render(profile_id: str) -> list[dict]:
    profile = next(p for p in PROFILES if p.id == profile_id)
    return render(profile.chart_dir, profile.values_files).objects


def rendered(profile: Profile) -> list[dict]:
    return _render(profile.id)
