"""compliance-monitor's domain: which alerts are compliance alerts, the regulation table's decisions,
the circuit breaker's window and cooldown, the policy file's validation."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from eafix.compliance_monitor.breaker import CircuitBreaker
from eafix.compliance_monitor.policy import (
    DEFAULT_POLICY,
    Action,
    AlertFacts,
    Approval,
    BreakerConfig,
    Policy,
    PolicyError,
    is_compliance,
    load_policy,
)
from service.factories import T0

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas/compliance/policy.v1.schema.json"


def facts(alertname="X", severity="critical", **labels):
    return AlertFacts(alertname, severity, {"alertname": alertname, "severity": severity, **labels})


@pytest.mark.parametrize(("alert", "expected"), [
    (facts(regulation="CFTC"), True),
    (facts(requirement="best-execution"), True),
    (facts(team="compliance"), True),
    (facts(team="risk-management"), True),
    (facts("AuditComplianceGap"), True),
    (facts("PositionLimitViolation"), True),
    (facts("HighLatency", team="platform"), False),
    (facts("ServiceDown"), False),
])
def test_which_alerts_are_compliance_alerts(alert, expected):
    assert is_compliance(alert) is expected


POLICY = Policy(load_policy(DEFAULT_POLICY))


@pytest.mark.parametrize(("regulation", "requirement", "severity", "action", "approval"), [
    # the domain notes' table: MiFID2 slippage critical -> parameter adjustment (factor 0.8)
    ("MiFID2", "best-execution", "critical", Action.PARAMETER_ADJUSTMENT, Approval.AUTO),
    ("MiFID2", "best-execution", "warning", Action.ALERT_ONLY, Approval.AUTO),
    # CFTC pre-trade coverage < 99.9 % -> trading halt, critical alerts approve themselves
    ("CFTC", "pre-trade-risk-controls", "critical", Action.TRADING_HALT, Approval.AUTO),
    ("CFTC", "pre-trade-risk-controls", "high", Action.TRADING_HALT, Approval.AUTO),
    # position reduction needs approval (domain notes: authorization)
    ("CFTC", "position-limits", "critical", Action.POSITION_REDUCTION, Approval.HUMAN),
    ("CFTC", "position-limits", "warning", Action.ALERT_ONLY, Approval.AUTO),
    ("CFTC", "kill-switch-testing", "warning", Action.MANUAL_INTERVENTION, Approval.HUMAN),
    ("SEC", "market-access-credit", "critical", Action.TRADING_HALT, Approval.HUMAN),
    ("internal", "var-limit", "critical", Action.POSITION_REDUCTION, Approval.HUMAN),
    ("internal", "concentration", "medium", Action.ALERT_ONLY, Approval.AUTO),
    # no rule for the pair: the fallback asks a human
    ("EMIR", "reporting", "critical", Action.MANUAL_INTERVENTION, Approval.HUMAN),
])
def test_the_table_chooses_the_action_and_its_approval(regulation, requirement, severity, action, approval):
    d = POLICY.decide(facts(severity=severity, regulation=regulation, requirement=requirement))
    assert (d.action, d.approval) == (action, approval)
    assert d.policy_version == "1.0.0"


def test_parameters_come_from_the_table():
    d = POLICY.decide(facts(regulation="MiFID2", requirement="best-execution"))
    assert d.parameters == {"size_factor": "0.8"} and d.rule == "MiFID2/best-execution/critical"
    d = POLICY.decide(facts(regulation="CFTC", requirement="position-limits"))
    assert d.parameters == {"target_utilization": "0.75"}


def test_the_shipped_policy_and_the_models_agree_with_the_json_schema():
    schema = json.loads(SCHEMA.read_text())
    document = yaml.safe_load(DEFAULT_POLICY.read_text())
    jsonschema.validate(document, schema)
    bad = {**document, "fallback": {"action": "system_shutdown", "approval": "auto"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 2}, "version"),
    ({"fallback": {"action": "system_shutdown", "approval": "auto"}}, "fallback.action"),
    ({"circuit_breaker": {"violations": 0}}, "circuit_breaker.violations"),
    ({"surprise": 1}, "surprise"),
])
def test_a_bad_policy_file_names_the_key(tmp_path, change, message):
    document = {**yaml.safe_load(DEFAULT_POLICY.read_text()), **change}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PolicyError, match=message) as err:
        load_policy(path)
    assert str(path) in str(err.value)


def test_a_rule_twice_is_refused(tmp_path):
    document = yaml.safe_load(DEFAULT_POLICY.read_text())
    document["rules"].append(document["rules"][0])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PolicyError, match=r"\(MiFID2, best-execution\) appears twice"):
        load_policy(path)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def test_five_violations_within_five_minutes_trip_the_breaker():
    breaker = CircuitBreaker(BreakerConfig())
    assert [breaker.record(at(s)) for s in (0, 60, 120, 180)] == [False] * 4
    assert breaker.record(at(299.999)) is True  # the first is 299.999 s old: still inside
    assert breaker.is_open(at(300))


def test_a_violation_exactly_five_minutes_old_no_longer_counts():
    breaker = CircuitBreaker(BreakerConfig())
    for s in (0, 60, 120, 180):
        breaker.record(at(s))
    assert breaker.record(at(300)) is False  # the one at 0 left the window
    assert breaker.record(at(301)) is True  # 60, 120, 180, 300, 301


def test_the_breaker_stays_open_for_the_cooldown_and_does_not_trip_again():
    breaker = CircuitBreaker(BreakerConfig(violations=2, window_seconds=60, cooldown_seconds=1800))
    breaker.record(at(0))
    assert breaker.record(at(1)) is True
    assert breaker.record(at(2)) is False and breaker.record(at(3)) is False  # open: no second halt
    assert breaker.is_open(at(1800.999))
    assert not breaker.is_open(at(1801))  # 1800 s after it opened at 1 s
    breaker.record(at(1801))
    assert breaker.record(at(1802)) is True


def test_the_breaker_threshold_is_configurable():
    breaker = CircuitBreaker(BreakerConfig(violations=3, window_seconds=10))
    assert [breaker.record(at(s)) for s in (0, 5, 9)] == [False, False, True]
