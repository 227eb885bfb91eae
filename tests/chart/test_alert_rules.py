"""`promtool test rules` (.tools/bin, built from tools/) on the unit tests under tests/chart/rule_tests:
series that must fire each alert the charts ship and series that must not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = ROOT / ".tools/bin/promtool"
RULE_TESTS = sorted((Path(__file__).parent / "rule_tests").glob("*.test.yaml"))
RULE_FILES = sorted((ROOT / "charts").glob("*/rules/*.yaml"))
# Alerts without a promtool unit test yet, written out so the list can only shrink.
NOT_YET_TESTED = {
    "EafixServiceDown", "EafixHighErrorRatio", "EafixHighLatency", "EafixRedisDown", "EafixRedisMemoryHigh",
    "EafixPostgresDown", "EafixPostgresConnectionsHigh", "EafixConsumerLag", "EafixConsumerBacklog", "EafixNoTicks",
    "EafixDeadLetters", "EafixCircuitBreakerOpen", "EafixRiskOffActive", "EafixOrderExecutionFailures",
    "EafixCalendarStale", "EafixMarketHoursAvailabilityViolation", "EafixAvailabilityErrorBudgetBurn",
    "EafixPriceFeedLatencySLO", "EafixSignalGenerationLatencySLO", "EafixRiskCheckLatencySLO",
    "EafixOrderExecutionLatencySLO", "EafixFillRateSLO",
}


def shipped_alerts() -> set[str]:
    return {rule["alert"] for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule}


def alerts_with_tests() -> dict[str, set[str]]:
    """alert -> the kinds of case its tests hold: 'fires' (an expected alert) and 'quiet' (none expected)."""
    out: dict[str, set[str]] = {}
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                out.setdefault(case["alertname"], set()).add("fires" if case.get("exp_alerts") else "quiet")
    return out


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests_pass(path):
    run = subprocess.run([PROMTOOL, "test", "rules", path.name], cwd=path.parent, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_every_shipped_alert_has_a_firing_and_a_quiet_case_or_is_listed():
    shipped, tested = shipped_alerts(), alerts_with_tests()
    assert set(tested) <= shipped, f"tests of alerts the charts do not ship: {set(tested) - shipped}"
    complete = {a for a, kinds in tested.items() if kinds == {"fires", "quiet"}}
    assert shipped - complete == NOT_YET_TESTED
