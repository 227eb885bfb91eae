"""The alert and recording rules the charts ship, checked by the real `promtool check rules`
(Prometheus 3.16.0, built by `make tools-go` from tools/prometheus), and a broken rule it must refuse."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from conftest import ALL_PROFILES, render_profile
from eafix.platform.profiles import REPO

PROMTOOL = REPO / ".tools" / "bin" / "promtool"
RULE_PROFILES = [p for p in ALL_PROFILES if render_profile(p.id).select(kind="PrometheusRule")]


def promtool(*args: str) -> subprocess.CompletedProcess:
    if not PROMTOOL.is_file():
        raise AssertionError(f"{PROMTOOL} is missing: run `make tools-go`")
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, check=False)


def test_some_profile_ships_rules():
    assert RULE_PROFILES, "eafix-trading renders its PrometheusRule by default"


@pytest.mark.parametrize("profile", RULE_PROFILES, ids=[p.id for p in RULE_PROFILES])
def test_promtool_accepts_every_rule(profile, tmp_path):
    files = []
    for rule in render_profile(profile.id).select(kind="PrometheusRule"):
        path = tmp_path / f"{rule['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        files.append(str(path))
    done = promtool("check", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_refuses_a_broken_expression(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "Broken", "expr": "sum(rate(eafix_bus_published_total[5m]) by", "labels": {"severity": "page"}}]}]}))
    done = promtool("check", "rules", str(path))
    assert done.returncode != 0 and "broken.yaml" in done.stdout + done.stderr
