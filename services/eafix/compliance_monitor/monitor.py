"""The compliance monitor: a notification's alerts -> audit, decision, action (or a pending approval).

Dedup: Alertmanager repeats a firing alert every repeat_interval and per group; an alert (by
fingerprint) counts as a violation once until it resolves. Repeats are audited as alerts only.
Actions: trading_halt -> gui-gateway `pause`; the gateway's contract has no size or parameter
control yet, so parameter_adjustment and position_reduction are audited with status `unsupported`
and escalated to manual intervention; manual_intervention waits for a human; alert_only does nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eafix.compliance_monitor.alerts import Alert, Notification
from eafix.compliance_monitor.audit import AuditEntry, AuditLog
from eafix.compliance_monitor.breaker import CircuitBreaker
from eafix.compliance_monitor.policy import Action, Approval, Decision, Policy, is_compliance
from eafix.compliance_monitor.trading_control import Control, TradingControl

APPROVAL_TIMEOUT = timedelta(minutes=15)  # domain notes: human approval times out after 15 min


@dataclass
class Pending:
    id: int
    fingerprint: str
    alertname: str
    decision: Decision
    created: datetime
    status: str = "pending"  # pending | approved | expired

    def view(self, now: datetime) -> dict[str, Any]:
        return {"id": self.id, "fingerprint": self.fingerprint, "alertname": self.alertname,
                "action": self.decision.action.value, "rule": self.decision.rule,
                "parameters": self.decision.parameters, "created": self.created.isoformat(),
                "expires": (self.created + APPROVAL_TIMEOUT).isoformat(), "status": self.status}


class ApprovalError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Observer:
    """Metric hooks; the service plugs the Prometheus counters in, tests and backtests use this no-op."""

    def alert(self, regulation: str, status: str) -> None: ...
    def violation(self, regulation: str, rule: str, severity: str) -> None: ...
    def remediation(self, action: str, status: str) -> None: ...
    def breaker(self, is_open: bool) -> None: ...


class ComplianceMonitor:
    def __init__(self, policy: Policy, control: TradingControl, audit: AuditLog, clock: Callable[[], datetime],
                 observer: Observer | None = None) -> None:
        self.policy, self.control, self.audit, self.clock = policy, control, audit, clock
        self.breaker = CircuitBreaker(policy.breaker)
        self.observer = observer or Observer()
        self._firing: set[str] = set()
        self._pending: dict[int, Pending] = {}
        self._ids = itertools.count(1)

    async def handle(self, notification: Notification) -> list[dict[str, Any]]:
        """Process every alert of a notification; returns one summary per alert (the webhook's answer)."""
        return [await self._alert(alert) for alert in notification.alerts]

    async def _alert(self, alert: Alert) -> dict[str, Any]:
        now, facts = self.clock(), alert.facts()
        compliance = is_compliance(facts)
        await self._audit(now, "alert", alert.fingerprint, {
            "status": alert.status, "labels": alert.labels, "startsAt": alert.startsAt.isoformat(),
            "compliance": compliance})
        self.observer.alert(facts.regulation or "none", alert.status)
        summary: dict[str, Any] = {"fingerprint": alert.fingerprint, "alertname": facts.alertname,
                                   "compliance": compliance}
        if alert.status == "resolved":
            self._firing.discard(alert.fingerprint)
            return {**summary, "outcome": "resolved"}
        if not compliance:
            return {**summary, "outcome": "ignored"}
        if alert.fingerprint in self._firing:
            return {**summary, "outcome": "repeat"}
        self._firing.add(alert.fingerprint)
        self.observer.violation(facts.regulation or "none", facts.requirement or "none", facts.severity or "none")
        decision = self.policy.decide(facts)
        summary.update(action=decision.action.value, approval=decision.approval.value, rule=decision.rule)
        summary["outcome"] = await self._carry_out(now, alert.fingerprint, facts.alertname, decision)
        tripped = self.breaker.record(now)
        self.observer.breaker(self.breaker.is_open(now))
        if tripped:
            summary["circuit_breaker"] = await self._carry_out(
                now, "circuit-breaker", facts.alertname, self.policy.breaker_decision())
        return summary

    async def _carry_out(self, now: datetime, subject: str, alertname: str, decision: Decision) -> str:
        await self._audit(now, "decision", subject, {
            "alertname": alertname, "action": decision.action.value, "approval": decision.approval.value,
            "rule": decision.rule, "parameters": decision.parameters, "policy_version": decision.policy_version})
        if decision.action is Action.ALERT_ONLY:
            self.observer.remediation(decision.action.value, "completed")
            return "recorded"
        if decision.approval is Approval.HUMAN or decision.action is Action.MANUAL_INTERVENTION:
            pending = Pending(next(self._ids), subject, alertname, decision, now)
            self._pending[pending.id] = pending
            self.observer.remediation(decision.action.value, "pending")
            return f"pending approval {pending.id}"
        return await self._act(now, subject, alertname, decision, "compliance-monitor")

    async def _act(self, now: datetime, subject: str, alertname: str, decision: Decision, actor: str) -> str:
        if decision.action is not Action.TRADING_HALT:
            self.observer.remediation(decision.action.value, "unsupported")
            await self._audit(now, "action", subject, {
                "action": decision.action.value, "result": "unsupported",
                "details": ["gui-gateway offers no size or parameter control; escalated to manual intervention"]},
                actor)
            return "unsupported"
        reason = f"compliance-monitor: {alertname} ({decision.rule})"
        result = await self.control.apply(Control.PAUSE, reason)
        self.observer.remediation(decision.action.value, "completed" if result.result == "ok" else "failed")
        await self._audit(now, "action", subject, {
            "action": decision.action.value, "control": result.control.value, "result": result.result,
            "details": result.details, "audit_id": result.audit_id}, actor)
        return f"acted: {result.result}"

    def pending(self) -> list[dict[str, Any]]:
        now = self.clock()
        self._expire(now)
        return [p.view(now) for p in self._pending.values() if p.status == "pending"]

    def _expire(self, now: datetime) -> None:
        for p in self._pending.values():
            if p.status == "pending" and now - p.created >= APPROVAL_TIMEOUT:
                p.status = "expired"

    async def approve(self, approval_id: int, principal: str) -> dict[str, Any]:
        now = self.clock()
        self._expire(now)
        pending = self._pending.get(approval_id)
        if pending is None:
            raise ApprovalError(404, f"no approval {approval_id}")
        if pending.status != "pending":
            raise ApprovalError(409, f"approval {approval_id} is {pending.status}")
        pending.status = "approved"
        await self._audit(now, "approval", pending.fingerprint, {"approval_id": approval_id,
                                                                 "action": pending.decision.action.value}, principal)
        if pending.decision.action is Action.MANUAL_INTERVENTION:
            self.observer.remediation(pending.decision.action.value, "completed")
            outcome = "acknowledged"
        else:
            outcome = await self._act(now, pending.fingerprint, pending.alertname, pending.decision, principal)
        return {**pending.view(now), "outcome": outcome}

    async def _audit(self, now: datetime, kind: str, subject: str, detail: dict[str, Any],
                     actor: str = "compliance-monitor") -> None:
        await self.audit.append(AuditEntry(now, kind, subject, detail, actor))
