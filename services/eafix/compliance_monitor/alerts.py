"""Alertmanager webhook payload, version 4 (what Alertmanager's webhook receiver POSTs)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eafix.compliance_monitor.policy import AlertFacts


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime  # noqa: N815 - Alertmanager's field names
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = Field(min_length=1)

    def facts(self) -> AlertFacts:
        return AlertFacts(self.labels.get("alertname", ""), self.labels.get("severity", ""), dict(self.labels))


class Notification(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal["4"]
    groupKey: str  # noqa: N815
    truncatedAlerts: int = Field(0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    alerts: list[Alert]


class PayloadError(ValueError):
    """A webhook body that is not a v4 notification; str() names the field (or says it is not JSON)."""


def parse_notification(body: bytes) -> Notification:
    """The notification in a webhook body; PayloadError (a 422) for anything else."""
    try:
        document = json.loads(body)
    except RecursionError:  # [[[[... past the recursion limit
        raise PayloadError("body: not JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise PayloadError(f"body: not JSON: {exc}") from None
    try:
        return Notification.model_validate(document)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PayloadError(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}") from None
