"""The embedded engine (helm-python-sdk, which every other chart test renders with) against the real
Helm 3 and Helm 4: the same objects, object by object, for every chart x profile. A difference is a
failure unless EXCEPTIONS names it with its reason."""

from __future__ import annotations

import pytest

from conftest import ALL_PROFILES, render_profile
from eafix.platform.profiles import Profile
from eafix.platform.render import render
from helm_binaries import HELMS, helm

# (binary, kind, JSON path) -> why the real binary differs; empty: no difference is known
EXCEPTIONS: dict[tuple[str, str, str], str] = {}

CASES = [(p, h) for p in ALL_PROFILES for h in HELMS]


def by_identity(objects: list[dict]) -> dict[tuple[str, str, str, str], dict]:
    return {(o.get("apiVersion", ""), o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for o in objects}


def differences(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += differences(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path or "."]


@pytest.mark.parametrize(("profile", "binary"), CASES, ids=[f"{p.id}-{h}" for p, h in CASES])
def test_the_embedded_render_equals_the_real_helm(profile: Profile, binary: str):
    embedded = by_identity(render_profile(profile.id).objects)
    real = by_identity(render(profile.chart_dir, profile.values_files, helm_bin=helm(binary)).objects)
    assert sorted(real) == sorted(embedded), "the same objects"
    found = []
    for key, obj in real.items():
        for path in differences(embedded[key], obj):
            if (binary, key[1], path) not in EXCEPTIONS:
                found.append(f"{key[1]}/{key[3]}{path}")
    assert not found, f"{binary} renders {profile.id} differently at: {found[:20]}"


def test_the_comparison_finds_a_nested_difference():
    a = {"spec": {"template": {"spec": {"containers": [{"image": "x:1"}]}}}}
    b = {"spec": {"template": {"spec": {"containers": [{"image": "x:2"}]}}}}
    assert differences(a, b) == [".spec.template.spec.containers[0].image"]
    assert differences(a, a) == []
