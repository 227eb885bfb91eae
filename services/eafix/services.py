"""Catalogue of the ten EAFIX services: ports, backends and peers.

This is the single Python source of these facts; the Helm chart's values.yaml repeats them
and a test cross-checks the two.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    uses_redis: bool
    uses_postgres: bool
    peers: tuple[str, ...]  # services this one calls over HTTP (SERVICE_<PEER>_URL)
    role: str

    @property
    def module(self) -> str:
        """Python package name of the service (snake_case)."""
        return self.name.replace("-", "_")


class UnknownServiceError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown service {name!r} (valid services: {', '.join(NAMES)})")

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.args[0]


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "gui-gateway", 8080, True, True,
        ("data-ingestor", "indicator-engine", "signal-generator", "risk-manager", "execution-engine",
         "calendar-ingestor", "reentry-matrix-svc", "reporter", "compliance-monitor"),
        "operator API + web UI, auth, emergency controls, live feed",
    ),
    ServiceSpec(
        "data-ingestor", 8081, True, False, (),
        "price-feed normalization (HTTP batch, MT4 CSV bridge), publishes ticks",
    ),
    ServiceSpec(
        "indicator-engine", 8082, True, False, (),
        "bars from ticks, incremental indicators, polars warm-up from the bar stream",
    ),
    ServiceSpec(
        "signal-generator", 8083, True, False, ("risk-manager",),
        "rules over indicators + calendar state -> signals / suppressions",
    ),
    ServiceSpec(
        "risk-manager", 8084, True, True, ("execution-engine",),
        "validation, position sizing, limits, blackout gate",
    ),
    ServiceSpec(
        "execution-engine", 8085, True, True, (),
        "OMS state machine, broker adapters (paper broker; MT4 file bridge)",
    ),
    ServiceSpec(
        "calendar-ingestor", 8086, True, True, (),
        "economic-calendar intake, event identity, proximity, blackouts",
    ),
    ServiceSpec(
        "reentry-matrix-svc", 8087, True, True, (),
        "re-entry decisions after trade close, chain ledger O->R1->R2",
    ),
    ServiceSpec(
        "reporter", 8088, True, True, (),
        "P&L and trading metrics, daily reports",
    ),
    ServiceSpec(
        "compliance-monitor", 9201, True, True, ("gui-gateway",),
        "Alertmanager webhook (HMAC), regulation thresholds, audit trail",
    ),
)

NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
BY_NAME: dict[str, ServiceSpec] = {s.name: s for s in SERVICES}


def get(name: str) -> ServiceSpec:
    """The spec of `name`; an unknown name raises an error that lists the valid ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownServiceError(name) from None
