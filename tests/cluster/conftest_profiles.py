"""The chart profiles and their rendered objects (embedded engine), for the cluster tests."""

from __future__ import annotations

from functools import cache

from eafix.platform.profiles import Profile, profiles
from eafix.platform.render import render

PROFILES: list[Profile] = profiles("eafix-trading")
APPS_PROFILES: list[Profile] = profiles("eafix-apps")


@cache
def _render(chart: str, profile_id: str) -> list[dict]:
    profile = next(p for p in profiles(chart) if p.id == profile_id)
    return render(profile.chart_dir, profile.values_files).objects


def rendered(profile: Profile) -> list[dict]:
    return _render(profile.chart, profile.id)


# eafix-infra's profiles that render objects of the chart's own (its defaults render none: the Secret
# contract, backups and the StorageClass are all opt-in, and the Bitnami dependencies are absent here)
INFRA_PROFILES: list[Profile] = [p for p in profiles("eafix-infra") if rendered(p)]
