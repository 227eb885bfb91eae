"""gui-gateway as a process: authentication (OIDC bearer JWTs, API keys), the emergency controls,
the operator audit, the system status, the read proxies, the live feed `/ws` (ws_routes.py, fed by
feed_reader.py from the bus) and the web UI (ui_routes.py).

Settings (besides the runtime's; the secrets arrive as files, /var/run/secrets/eafix/SERVICE_X):
    SERVICE_OIDC_ISSUER             the issuer (`iss`); unset: bearer tokens are refused, API keys only
    SERVICE_OIDC_AUDIENCE           required with an issuer: this API's audience (`aud`)
    SERVICE_OIDC_JWKS_URL           the issuer's JWKS; default: from its OpenID discovery document
    SERVICE_OIDC_ALGORITHMS         JSON list, a subset of ["RS256", "ES256"] (the default)
    SERVICE_OIDC_LEEWAY_SECONDS     clock skew tolerated on exp/nbf/iat (default 30)
    SERVICE_OIDC_ROLES_CLAIM        dotted claim path holding the roles (default `roles`)
    SERVICE_OIDC_NAME_CLAIM         claim naming the principal (default `sub`)
    SERVICE_OIDC_JWKS_TTL_SECONDS   keys are fetched again after this (default 300)
    SERVICE_OIDC_JWKS_MIN_REFRESH_SECONDS  an unknown kid refetches at most this often (default 30)
    SERVICE_API_KEYS                secret file: `<id> <roles> <argon2 hash>` per line (api_keys.py)
    SERVICE_BOOTSTRAP_ADMIN         secret file: `<id> <argon2 hash>`, the first admin's API key
    SERVICE_RATE_LIMIT              JSON {principal_rps, principal_burst, source_rps, source_burst}
    SERVICE_MAX_BODY_BYTES          request body limit (default 65536)
    SERVICE_CORS_ORIGINS            JSON list of allowed origins; empty (default): no CORS headers
    SERVICE_WS_QUEUE_SIZE           live feed: messages queued per WebSocket client before it is dropped
                                    as too slow (default 1000)
    SERVICE_WS_STATUS_SECONDS       live feed: the `status` channel's snapshot period (default 5)
    SERVICE_POSTGRES_URL            the operator audit, schema `gateway` (unset: in memory)
    SERVICE_REDIS_URL               the bus: risk-off published, streams read for the status
    SERVICE_<PEER>_URL              the nine peers (readiness, proxies, execution-engine for close-all)
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from eafix.contracts import SystemRiskOff
from eafix.contracts.messaging import Messenger
from eafix.gui_gateway.api_keys import ApiKeyEntry, ApiKeyError, ApiKeys, parse_bootstrap_admin, parse_key_file
from eafix.gui_gateway.app import build_router
from eafix.gui_gateway.audit import InMemoryOperatorAudit, OperatorAudit
from eafix.gui_gateway.bus_status import read_last_ticks, read_risk_off, read_streams
from eafix.gui_gateway.controls import EmergencyControls
from eafix.gui_gateway.feed_reader import BusFeed, StatusReader
from eafix.gui_gateway.guards import RequestGuards
from eafix.gui_gateway.jwks import JwksCache
from eafix.gui_gateway.live_feed import FeedHub
from eafix.gui_gateway.peers import ExecutionPositions, Peers, identity_headers
from eafix.gui_gateway.principals import Principal
from eafix.gui_gateway.ratelimit import RateLimiter
from eafix.gui_gateway.repository import PostgresOperatorAudit
from eafix.gui_gateway.security import Authenticator
from eafix.gui_gateway.status import Readings, system_status
from eafix.gui_gateway.tokens import ASYMMETRIC, OidcConfig
from eafix.gui_gateway.ui_routes import build_ui_router
from eafix.gui_gateway.ws_routes import build_ws_router
from eafix.runtime.bus import Bus
from eafix.runtime.bus.redis_streams import RedisStreamsBus, stream_names
from eafix.runtime.clock import WallClock
from eafix.runtime.logging import correlation_id
from eafix.runtime.redis_client import redis_client
from eafix.runtime.service import ServiceParts, json_model, pipeline_bus, pipeline_database
from eafix.runtime.settings import Settings


class RateLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    principal_rps: float = Field(10.0, gt=0)
    principal_burst: int = Field(40, ge=1)
    source_rps: float = Field(50.0, gt=0)
    source_burst: int = Field(200, ge=1)


class GatewaySettings(Settings):
    oidc_audience: str | None = None  # declared before the issuer, whose check reads it
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_algorithms: list[str] = Field(default_factory=lambda: sorted(ASYMMETRIC))
    oidc_leeway_seconds: float = Field(30.0, ge=0, le=300)
    oidc_roles_claim: str = Field("roles", min_length=1)
    oidc_name_claim: str = Field("sub", min_length=1)
    oidc_jwks_ttl_seconds: float = Field(300.0, ge=1)
    oidc_jwks_min_refresh_seconds: float = Field(30.0, ge=0)
    api_keys: SecretStr | None = None
    bootstrap_admin: SecretStr | None = None
    rate_limit: RateLimits = Field(default_factory=RateLimits)
    max_body_bytes: int = Field(65_536, ge=1024, le=10_485_760)
    cors_origins: list[str] = Field(default_factory=list)
    ws_queue_size: int = Field(1000, ge=10, le=100_000)
    ws_status_seconds: float = Field(5.0, ge=0.5, le=300)

    _rate_limit = json_model("rate_limit", RateLimits)

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        if not value or not set(value) <= ASYMMETRIC:
            raise ValueError(f"must be a non-empty subset of {sorted(ASYMMETRIC)} (no HS*, no none)")
        return value

    @field_validator("api_keys")
    @classmethod
    def _key_file(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_key_file(value.get_secret_value())
            except ApiKeyError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("bootstrap_admin")
    @classmethod
    def _admin_file(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_bootstrap_admin(value.get_secret_value())
            except ApiKeyError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _audience_with_issuer(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and not info.data.get("oidc_audience"):
            raise ValueError("needs SERVICE_OIDC_AUDIENCE (this API's audience) as well")
        return value

    def key_entries(self) -> list[ApiKeyEntry]:
        entries = parse_key_file(self.api_keys.get_secret_value()) if self.api_keys else []
        if self.bootstrap_admin is not None:
            entries.append(parse_bootstrap_admin(self.bootstrap_admin.get_secret_value()))
        return entries


SETTINGS = GatewaySettings


class BusRiskOff:
    """RiskOffPort on the bus: SystemRiskOff on `eafix.system.risk_off` (every signal-generator replica
    follows that topic without a consumer group)."""

    def __init__(self, messenger: Messenger) -> None:
        self._messenger = messenger

    async def publish(self, active: bool, reason: str, source: str) -> None:
        await self._messenger.publish([SystemRiskOff(active=active, reason=reason, source=source)])


async def _readings(peers: Peers, redis: Any) -> Readings:
    names = sorted(peers.urls)
    ready = await asyncio.gather(*(peers.readiness(n) for n in names))
    readings = Readings(services=dict(zip(names, ready, strict=True)))
    if redis is None:
        readings.bus_error = "no SERVICE_REDIS_URL"
        return readings
    try:
        readings.streams = await read_streams(redis)
        readings.last_ticks = await read_last_ticks(redis, list(readings.streams))
        readings.risk_off = await read_risk_off(redis)
    except Exception as exc:  # Redis down: the status says so instead of failing
        readings.bus_error = f"{type(exc).__name__}: {exc}"
    return readings


def _add_feed(parts: ServiceParts, settings: GatewaySettings, bus: RedisStreamsBus, hub: FeedHub,
              status: StatusReader) -> None:
    """The live feed's reader on a client of its own (its blocking XREAD must not hold the status's)."""
    client = redis_client(settings, **RedisStreamsBus.client_options(f"{settings.name}-feed"))
    parts.add_step(stop=client.aclose)
    feed = BusFeed(client, hub, lambda t: stream_names(t, bus.config.partitions_for(t)), status,
                   status_seconds=settings.ws_status_seconds)
    parts.add_task("live-feed", feed.run, feed.stop)
    parts.add_task("live-feed-status", feed.run_status, feed.stop)
    parts.state["live_feed"] = feed


def build(settings: GatewaySettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    bus: Bus = pipeline_bus(settings, parts, consume=False)
    messenger = Messenger(bus, settings.name, clock)
    db = pipeline_database(settings, parts)
    audit: OperatorAudit = PostgresOperatorAudit(db.pool) if db is not None else InMemoryOperatorAudit()
    peers = Peers(settings.peers)
    parts.add_step(stop=peers.aclose)
    oidc, keys = None, None
    if settings.oidc_issuer and settings.oidc_audience:
        oidc = OidcConfig(settings.oidc_issuer, settings.oidc_audience, frozenset(settings.oidc_algorithms),
                          settings.oidc_leeway_seconds, settings.oidc_roles_claim, settings.oidc_name_claim)
        idp = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        parts.add_step(stop=idp.aclose)
        keys = JwksCache(idp, issuer=settings.oidc_issuer, jwks_url=settings.oidc_jwks_url,
                         ttl=settings.oidc_jwks_ttl_seconds, min_refresh=settings.oidc_jwks_min_refresh_seconds).key
    limits = settings.rate_limit
    auth = Authenticator(oidc=oidc, keys=keys, api_keys=ApiKeys(settings.key_entries()), audit=audit, clock=clock,
                         limiter=RateLimiter(limits.principal_rps, limits.principal_burst))
    redis = None
    if settings.redis_url:
        redis = redis_client(settings)
        parts.add_step(stop=redis.aclose)

    def controls_for(principal: Principal) -> EmergencyControls:
        headers = identity_headers(principal, correlation_id.get() or "")
        return EmergencyControls(BusRiskOff(messenger), ExecutionPositions(peers, headers))

    hub = FeedHub(settings.ws_queue_size)

    async def status() -> dict[str, Any]:
        feed = {"clients": len(hub.clients), "dropped_slow_clients": hub.dropped_total}
        return {**system_status(await _readings(peers, redis), clock.now()), "live_feed": feed}

    parts.middleware.append((RequestGuards, {"limiter": RateLimiter(limits.source_rps, limits.source_burst),
                                             "max_body_bytes": settings.max_body_bytes}))
    if settings.cors_origins:
        parts.middleware.append((CORSMiddleware, {
            "allow_origins": settings.cors_origins, "allow_methods": ["GET", "POST"],
            "allow_headers": ["Authorization", "Content-Type", "X-API-Key", "X-Correlation-ID"]}))
    if redis is not None and isinstance(bus, RedisStreamsBus):
        _add_feed(parts, settings, bus, hub, status)
    parts.routers += [build_router(auth, controls_for, peers, status), build_ws_router(auth, hub), build_ui_router()]
    parts.state.update(audit=audit, authenticator=auth, peers=peers, bus=bus, feed_hub=hub)
    return parts


__all__ = ["SETTINGS", "GatewaySettings", "build"]
