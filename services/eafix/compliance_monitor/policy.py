"""The regulation policy: which alerts are compliance alerts, and which action (with which approval
rule) a firing one calls for. Pure: no I/O besides reading the YAML document.

Document (YAML; JSON Schema schemas/compliance/policy.v1.schema.json; these models accept exactly
what it accepts): `rules` keyed by (regulation, requirement), each with a `warning` and a `critical`
outcome; `fallback` for a compliance alert no rule names; `circuit_breaker` (see breaker.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eafix.runtime.yaml_text import safe_load

DEFAULT_POLICY = Path(__file__).with_name("policy.default.yaml")
COMPLIANCE_TEAMS = frozenset({"compliance", "risk-management"})
CRITICAL_SEVERITIES = frozenset({"critical", "high"})  # any other severity is handled as a warning


class Action(StrEnum):
    ALERT_ONLY = "alert_only"
    PARAMETER_ADJUSTMENT = "parameter_adjustment"
    POSITION_REDUCTION = "position_reduction"
    TRADING_HALT = "trading_halt"
    MANUAL_INTERVENTION = "manual_intervention"


class Approval(StrEnum):
    AUTO = "auto"
    HUMAN = "human"


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    approval: Approval
    parameters: dict[str, str] = Field(default_factory=dict)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    regulation: str = Field(min_length=1)
    requirement: str = Field(min_length=1)
    threshold: str = ""
    warning: Outcome
    critical: Outcome


class BreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    violations: int = Field(5, ge=1, le=1000)
    window_seconds: float = Field(300, gt=0, le=86400)
    cooldown_seconds: float = Field(1800, ge=0, le=86400)


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    policy_version: str = Field(min_length=1)
    circuit_breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    fallback: Outcome
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique_rules(self) -> PolicyDocument:
        seen: set[tuple[str, str]] = set()
        for rule in self.rules:
            key = (rule.regulation, rule.requirement)
            if key in seen:
                raise ValueError(f"rules: ({rule.regulation}, {rule.requirement}) appears twice")
            seen.add(key)
        return self


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the file and the failing key."""


def load_policy(path: Path) -> PolicyDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    try:
        raw = safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not YAML: {exc}") from None
    try:
        return PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(document)"
        raise PolicyError(f"{path}: {where}: {err['msg']}") from None


@dataclass(frozen=True)
class AlertFacts:
    """What the policy reads of one Alertmanager alert."""

    alertname: str
    severity: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def regulation(self) -> str:
        return self.labels.get("regulation", "")

    @property
    def requirement(self) -> str:
        return self.labels.get("requirement", "")


def is_compliance(alert: AlertFacts) -> bool:
    """Domain notes section 7: regulation/requirement labels, a compliance or risk team, or an alert
    name mentioning compliance or a violation."""
    name = alert.alertname.lower()
    return bool(alert.regulation or alert.requirement or alert.labels.get("team") in COMPLIANCE_TEAMS
                or "compliance" in name or "violation" in name)


@dataclass(frozen=True)
class Decision:
    action: Action
    approval: Approval
    parameters: dict[str, str]
    rule: str  # "MiFID2/best-execution/critical", "fallback" or "circuit-breaker"
    policy_version: str


class Policy:
    def __init__(self, document: PolicyDocument) -> None:
        self.document = document
        self._rules = {(r.regulation, r.requirement): r for r in document.rules}

    @property
    def breaker(self) -> BreakerConfig:
        return self.document.circuit_breaker

    def decide(self, alert: AlertFacts) -> Decision:
        """The action for a firing compliance alert (the caller checked `is_compliance`)."""
        level = "critical" if alert.severity.lower() in CRITICAL_SEVERITIES else "warning"
        rule = self._rules.get((alert.regulation, alert.requirement))
        if rule is None:
            out, name = self.document.fallback, "fallback"
        else:
            out, name = getattr(rule, level), f"{rule.regulation}/{rule.requirement}/{level}"
        return Decision(out.action, out.approval, dict(out.parameters), name, self.document.policy_version)

    def breaker_decision(self) -> Decision:
        return Decision(Action.TRADING_HALT, Approval.AUTO, {}, "circuit-breaker", self.document.policy_version)
