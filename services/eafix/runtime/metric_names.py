"""The business metrics of the EAFIX services: one registry of names, types, labels and owners.

The runtime already registers the HTTP metrics (``eafix.runtime.metrics``: ``eafix_http_requests_total``,
``eafix_http_request_duration_seconds``, ``eafix_build_info``) and the bus metrics
(``eafix.runtime.bus.metrics``: ``eafix_bus_lag``, ``eafix_bus_pending``, ...). Everything else the
alert rules and Grafana dashboards use is declared here first, and the services create their
collectors from these declarations, so the exported names cannot drift from what the rules query:

    from eafix.runtime import metric_names as mn

    metrics = mn.create(app.state.metrics.registry, mn.TICKS_RECEIVED, mn.PRICE_FEED_LATENCY)
    metrics[mn.TICKS_RECEIVED].labels(symbol="EURUSD", source="mt4").inc()
    metrics[mn.PRICE_FEED_LATENCY].labels(source="mt4").observe(0.012)

A name is the prometheus-client name: a counter is declared without ``_total`` (the client adds
it), a histogram exports ``_bucket``/``_sum``/``_count``. Histogram buckets include every SLO
threshold as a bucket bound, because the SLO rules count ``le="<threshold>"`` buckets.

``EXTERNAL`` lists the metrics of the exporters the platform deploys (Prometheus itself, the
Bitnami Redis and PostgreSQL exporters). tests/chart/test_observability.py parses every rule and
dashboard expression and fails on a metric that is in none of these places.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()  # services that export it
    buckets: tuple[float, ...] | None = None  # histograms only

    def __post_init__(self) -> None:
        if self.kind not in (COUNTER, GAUGE, HISTOGRAM):
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")
        if self.kind == COUNTER and self.name.endswith("_total"):
            raise ValueError(f"{self.name}: declare counters without _total (the client appends it)")
        if (self.kind == HISTOGRAM) != (self.buckets is not None):
            raise ValueError(f"{self.name}: buckets are required for histograms and only for them")

    @property
    def series(self) -> tuple[str, ...]:
        """The names of the series Prometheus stores for this metric."""
        if self.kind == COUNTER:
            return (f"{self.name}_total",)
        if self.kind == HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


# Latency buckets; each contains the SLO bound of its stage (100 ms, 500 ms, 2 s).
_FAST = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
_SIGNAL = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
_ORDER = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
_BPS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)

# --- data-ingestor ---------------------------------------------------------------------------------
TICKS_RECEIVED = MetricSpec("eafix_ticks_received", COUNTER, "Price ticks accepted and published to eafix.price.tick.",
                            ("symbol", "source"), ("data-ingestor",))
TICKS_REJECTED = MetricSpec("eafix_ticks_rejected", COUNTER, "Price ticks refused by normalisation.",
                            ("source", "reason"), ("data-ingestor",))
PRICE_FEED_LATENCY = MetricSpec(
    "eafix_price_feed_latency_seconds", HISTOGRAM,
    "From a tick's ts_event to its publication on eafix.price.tick (SLO: p95 < 100 ms).",
    ("source",), ("data-ingestor",), _FAST)
LAST_TICK = MetricSpec("eafix_last_tick_timestamp_seconds", GAUGE, "Unix time of the last accepted tick.",
                       ("symbol",), ("data-ingestor",))

# --- indicator-engine ------------------------------------------------------------------------------
BARS_CLOSED = MetricSpec("eafix_bars_closed", COUNTER, "Bars closed and published.", ("symbol", "timeframe"),
                         ("indicator-engine",))
INDICATOR_LATENCY = MetricSpec(
    "eafix_indicator_latency_seconds", HISTOGRAM,
    "From a bar's close to the publication of its indicator vector.", ("timeframe",), ("indicator-engine",), _FAST)

# --- signal-generator ------------------------------------------------------------------------------
SIGNALS_GENERATED = MetricSpec("eafix_signals_generated", COUNTER, "Signals published to eafix.signals.generated.",
                               ("symbol", "direction"), ("signal-generator",))
SIGNALS_SUPPRESSED = MetricSpec("eafix_signals_suppressed", COUNTER, "Signals suppressed, by reason.",
                                ("reason",), ("signal-generator",))
SIGNAL_LATENCY = MetricSpec(
    "eafix_signal_generation_seconds", HISTOGRAM,
    "From an indicator vector's ts_init to the published signal (SLO: p95 < 500 ms).", (),
    ("signal-generator",), _SIGNAL)

# --- risk-manager ----------------------------------------------------------------------------------
RISK_CHECK_LATENCY = MetricSpec(
    "eafix_risk_check_duration_seconds", HISTOGRAM, "Duration of one pre-trade risk check (SLO: p95 < 100 ms).",
    (), ("risk-manager",), _FAST)
RISK_DECISIONS = MetricSpec("eafix_risk_decisions", COUNTER, "Pre-trade risk decisions (outcome approved|rejected).",
                            ("outcome",), ("risk-manager",))
RISK_OFF_ACTIVE = MetricSpec("eafix_risk_off_active", GAUGE, "1 while the eafix.system.risk_off latch is set.",
                             (), ("signal-generator",))
EXPOSURE = MetricSpec("eafix_exposure_usd", GAUGE, "Open notional in USD per symbol (lots x 100,000 base units).",
                      ("symbol",), ("risk-manager",))
POSITION_LIMIT_UTILIZATION = MetricSpec(
    "eafix_position_limit_utilization_ratio", GAUGE, "Position over its limit per symbol (0..1).", ("symbol",),
    ("risk-manager",))
# The regulation metrics below are computed by compliance-monitor from the trading state (its issue).
VAR_UTILIZATION = MetricSpec("eafix_var_utilization_ratio", GAUGE, "1-day VaR over the VaR limit (0..1).", (),
                             ("compliance-monitor",))
CONCENTRATION = MetricSpec("eafix_concentration_ratio", GAUGE, "Share of total exposure per symbol (0..1).",
                           ("symbol",), ("risk-manager",))
CREDIT_UTILIZATION = MetricSpec("eafix_credit_utilization_ratio", GAUGE,
                                "Market-access credit in use over the credit limit (0..1).", (),
                                ("compliance-monitor",))

# --- execution-engine ------------------------------------------------------------------------------
ORDERS_SUBMITTED = MetricSpec("eafix_orders_submitted", COUNTER, "Orders sent to a broker.", ("symbol", "broker"),
                              ("execution-engine",))
ORDERS_FILLED = MetricSpec("eafix_orders_filled", COUNTER, "Orders filled (fill rate SLO > 95%).",
                           ("symbol", "broker"), ("execution-engine",))
ORDERS_FAILED = MetricSpec("eafix_orders_failed", COUNTER, "Orders rejected by the broker or timed out.",
                           ("broker", "reason"), ("execution-engine",))
ORDER_EXECUTION_LATENCY = MetricSpec(
    "eafix_order_execution_seconds", HISTOGRAM, "From an OrderIntent to its fill report (SLO: p95 < 2 s).",
    ("broker",), ("execution-engine",), _ORDER)
SLIPPAGE = MetricSpec("eafix_slippage_bps", HISTOGRAM, "Fill price against the intended price in basis points.",
                      ("symbol",), ("execution-engine",), _BPS)
KILL_SWITCH_LAST_TEST = MetricSpec(
    "eafix_kill_switch_last_test_timestamp_seconds", GAUGE, "Unix time of the last successful kill-switch test.",
    (), ("compliance-monitor",))
CIRCUIT_BREAKER_OPEN = MetricSpec("eafix_circuit_breaker_open", GAUGE, "1 while the named circuit breaker is open.",
                                  ("breaker",), ("compliance-monitor",))

# --- calendar-ingestor -----------------------------------------------------------------------------
CALENDAR_LAST_REFRESH = MetricSpec(
    "eafix_calendar_last_refresh_timestamp_seconds", GAUGE,
    "Unix time calendar-ingestor last recomputed and published the blackout gates.",
    (), ("calendar-ingestor",))
BLACKOUT_ACTIVE = MetricSpec("eafix_blackout_active", GAUGE, "1 while a news blackout blocks the symbol.",
                             ("symbol",), ("calendar-ingestor",))

# --- reentry-matrix-svc ----------------------------------------------------------------------------
REENTRY_DECISIONS = MetricSpec("eafix_reentry_decisions", COUNTER, "Re-entry decisions by action and generation.",
                               ("action", "generation"), ("reentry-matrix-svc",))

# --- reporter --------------------------------------------------------------------------------------
EQUITY = MetricSpec("eafix_equity_usd", GAUGE, "Account equity in USD.", (), ("reporter",))
EQUITY_PEAK = MetricSpec("eafix_equity_peak_usd", GAUGE, "Highest equity reached (drawdown reference).", (),
                         ("reporter",))
PNL_REALIZED = MetricSpec("eafix_pnl_realized_usd", GAUGE, "Realised P&L of the current trading day in USD.",
                          ("symbol",), ("reporter",))
PNL_UNREALIZED = MetricSpec("eafix_pnl_unrealized_usd", GAUGE, "Unrealised P&L of the open positions in USD.",
                            ("symbol",), ("reporter",))
TRADES_CLOSED = MetricSpec("eafix_trades_closed", COUNTER, "Trades closed, by outcome bucket.",
                           ("symbol", "outcome"), ("reporter",))

# --- compliance-monitor ----------------------------------------------------------------------------
COMPLIANCE_ALERTS = MetricSpec("eafix_compliance_alerts_received", COUNTER,
                               "Alertmanager notifications accepted (status firing|resolved).",
                               ("regulation", "status"), ("compliance-monitor",))
COMPLIANCE_VIOLATIONS = MetricSpec("eafix_compliance_violations", COUNTER, "Regulation threshold violations.",
                                   ("regulation", "rule", "severity"), ("compliance-monitor",))
COMPLIANCE_REMEDIATIONS = MetricSpec("eafix_compliance_remediations", COUNTER, "Remediation actions by status.",
                                     ("action", "status"), ("compliance-monitor",))
WEBHOOK_REJECTED = MetricSpec("eafix_compliance_webhook_rejected", COUNTER,
                              "Webhook calls refused (bad or missing signature, malformed body).", ("reason",),
                              ("compliance-monitor",))

REGISTRY: tuple[MetricSpec, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, MetricSpec))

# Metrics of the exporters the platform deploys: name -> where it comes from.
EXTERNAL: Mapping[str, str] = {
    "up": "Prometheus (scrape health of every target)",
    "ALERTS": "Prometheus (pending and firing alerts)",
    "container_cpu_usage_seconds_total": "kubelet cAdvisor (scraped by kube-prometheus-stack)",
    "container_memory_working_set_bytes": "kubelet cAdvisor (scraped by kube-prometheus-stack)",
    "redis_up": "redis_exporter (Bitnami redis metrics sidecar)",
    "redis_memory_used_bytes": "redis_exporter",
    "redis_memory_max_bytes": "redis_exporter",
    "redis_connected_clients": "redis_exporter",
    "pg_up": "postgres_exporter (Bitnami postgresql metrics sidecar)",
    "pg_stat_activity_count": "postgres_exporter",
    "pg_settings_max_connections": "postgres_exporter",
}

# Labels every scraped series gets from the ServiceMonitor target (prometheus-operator).
TARGET_LABELS = frozenset({"namespace", "service", "pod", "container", "endpoint", "job", "instance"})


def by_service(service: str) -> tuple[MetricSpec, ...]:
    """The declared metrics one service exports."""
    return tuple(m for m in REGISTRY if service in m.owners)


def get(name: str) -> MetricSpec:
    for m in REGISTRY:
        if m.name == name:
            return m
    raise KeyError(name)


def create(registry: CollectorRegistry, *specs: MetricSpec | Iterable[MetricSpec]) -> dict[MetricSpec, Any]:
    """Register the collectors of ``specs`` in ``registry``; returns {spec: collector}."""
    flat: list[MetricSpec] = []
    for s in specs:
        flat.extend([s] if isinstance(s, MetricSpec) else s)
    out: dict[MetricSpec, Any] = {}
    for s in flat:
        if s.kind == COUNTER:
            out[s] = Counter(s.name, s.help, list(s.labels), registry=registry)
        elif s.kind == GAUGE:
            out[s] = Gauge(s.name, s.help, list(s.labels), registry=registry)
        else:
            buckets = s.buckets if s.buckets is not None else Histogram.DEFAULT_BUCKETS
            out[s] = Histogram(s.name, s.help, list(s.labels), registry=registry, buckets=buckets)
    return out


def stage_metrics(registry: CollectorRegistry | None, *specs: MetricSpec) -> dict[MetricSpec, Any] | None:
    """The business metrics a bus stage exports, or None without a registry (a backtest exports none)."""
    return create(registry, *specs) if registry is not None else None
