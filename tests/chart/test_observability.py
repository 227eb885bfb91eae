"""Observability of eafix-trading: ServiceMonitors, the PrometheusRule files, the Grafana dashboards,
the metrics they query, and the Alertmanager route to compliance-monitor.

Every PromQL expression (rules and dashboard panels) is parsed with a real PromQL parser; every
metric it names must be one the services register (the runtime's HTTP and bus metrics), one
declared in `eafix.runtime.metric_names` (which the services create their collectors from), an
exporter metric the platform deploys (`metric_names.EXTERNAL`), or a series our own rules record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from conftest import PORTS, SERVICES, TRADING, render_profile
from eafix.platform import custom_resources
from eafix.platform.profiles import REPO
from eafix.runtime import metric_names as mn
from eafix.runtime.bus.metrics import BusMetrics
from eafix.runtime.metrics import HttpMetrics

RULES_DIR = TRADING / "rules"
DASHBOARDS_DIR = TRADING / "dashboards"
RUNBOOKS = REPO / "docs" / "runbooks"
DEFAULT_RUNBOOK_BASE = "https://github.com/eafix/eafix/blob/main/docs/runbooks"
RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))
DASHBOARD_FILES = sorted(DASHBOARDS_DIR.glob("*.json"))
SEVERITIES = {"critical", "warning", "info"}


# --- the metrics that exist ------------------------------------------------------------------------

def _families(registry: CollectorRegistry) -> dict[str, tuple[str, set[str]]]:
    """series name -> (type, label names) of every collector in the registry, children or not.

    The names and types come from `collect()`; prometheus-client exposes a metric's label names only
    as the collector's `_labelnames`, and a labelled metric without children has no sample to read
    them from.
    """
    out: dict[str, tuple[str, set[str]]] = {}
    for collector in list(registry._collector_to_names):
        labels = set(collector._labelnames)
        for family in collector.collect():
            if family.type == "counter":
                out[f"{family.name}_total"] = ("counter", labels)
            elif family.type == "histogram":
                out[f"{family.name}_bucket"] = ("histogram", labels | {"le"})
                out[f"{family.name}_sum"] = out[f"{family.name}_count"] = ("histogram", labels)
            else:
                out[family.name] = (family.type, labels)
    return out


@cache
def runtime_metrics() -> dict[str, tuple[str, set[str]]]:
    """What the service runtime registers today: HTTP metrics of every app, bus metrics of every consumer."""
    http = HttpMetrics.create("probe", "0")
    out = _families(http.registry)
    out.update(_families(BusMetrics(CollectorRegistry()).registry))
    return out


@cache
def registry_metrics() -> dict[str, tuple[str, set[str]]]:
    registry = CollectorRegistry()
    mn.create(registry, mn.REGISTRY)
    return _families(registry)


@cache
def recorded() -> set[str]:
    """The series our recording rules produce."""
    return {r["record"] for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"]
            for r in g["rules"] if "record" in r}


def known_metric(name: str) -> bool:
    return name in runtime_metrics() or name in registry_metrics() or name in mn.EXTERNAL or name in recorded()


def labels_of(name: str) -> set[str] | None:
    """Labels a selector may match on the metric; None when unknown (external/recorded)."""
    for table in (runtime_metrics(), registry_metrics()):
        if name in table:
            return table[name][1] | mn.TARGET_LABELS
    return None


# --- PromQL walking -----------------------------------------------------------------------------------

def selectors(expr: Any) -> Iterator[Any]:
    """Every VectorSelector of a parsed expression."""
    if isinstance(expr, promql_parser.VectorSelector):
        yield expr
        return
    for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(expr, attr, None)
        if child is not None and not isinstance(child, (str, int, float)):
            yield from selectors(child)
    for arg in getattr(expr, "args", None) or []:
        yield from selectors(arg)


def metric_names(expr_text: str) -> set[str]:
    return {s.name for s in selectors(promql_parser.parse(expr_text)) if s.name}


def problems_of(expr_text: str, *, require_namespace: bool) -> list[str]:
    """Unknown metrics, unknown labels, SLO buckets that are no bucket bound, missing namespace scoping."""
    out = []
    for sel in selectors(promql_parser.parse(expr_text)):
        name = sel.name
        matchers = {m.name: m for m in sel.matchers.matchers}
        if not name or not known_metric(name):
            out.append(f"unknown metric {name!r}")
            continue
        known_labels = labels_of(name)
        if known_labels is not None:
            for label in matchers:
                if label not in known_labels:
                    out.append(f"{name}: no label {label!r}")
        if "le" in matchers and name.endswith("_bucket") and name in registry_metrics():
            spec = mn.get(name.removesuffix("_bucket"))
            if float(matchers["le"].value) not in spec.buckets:
                out.append(f"{name}: le={matchers['le'].value} is not a bucket bound of {spec.buckets}")
        if require_namespace and "namespace" not in matchers:
            out.append(f"{name}: selector without a namespace matcher")
    return out


def rules() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for f in RULE_FILES:
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                yield f.stem, group["name"], rule


def alerts() -> list[tuple[str, dict[str, Any]]]:
    return [(f, r) for f, _, r in rules() if "alert" in r]


# --- the registry itself --------------------------------------------------------------------------------

def test_registry_names_are_unique_prefixed_and_owned_by_real_services():
    names = [m.name for m in mn.REGISTRY]
    assert len(names) == len(set(names)) and len(names) >= 30
    assert all(n.startswith("eafix_") for n in names)
    assert all(m.owners and set(m.owners) <= set(SERVICES) for m in mn.REGISTRY)
    assert not set(names) & {n.removesuffix("_total") for n in runtime_metrics()}  # no duplicate of the runtime
    assert {s for s in SERVICES if mn.by_service(s)} >= {"data-ingestor", "signal-generator", "risk-manager",
                                                         "execution-engine", "reporter", "compliance-monitor"}


def test_registry_creates_the_declared_series():
    registry = CollectorRegistry()
    made = mn.create(registry, mn.TICKS_RECEIVED, mn.PRICE_FEED_LATENCY, mn.EQUITY)
    made[mn.TICKS_RECEIVED].labels(symbol="EURUSD", source="mt4").inc()
    made[mn.PRICE_FEED_LATENCY].labels(source="mt4").observe(0.05)
    made[mn.EQUITY].set(10_000)
    samples = {s.name for fam in registry.collect() for s in fam.samples}
    assert set(mn.TICKS_RECEIVED.series) | set(mn.PRICE_FEED_LATENCY.series) | set(mn.EQUITY.series) <= samples
    with pytest.raises(ValueError, match="without _total"):
        mn.MetricSpec("eafix_x_total", mn.COUNTER, "x")
    with pytest.raises(ValueError, match="buckets"):
        mn.MetricSpec("eafix_y_seconds", mn.HISTOGRAM, "y")


def test_slo_bounds_are_bucket_bounds():
    assert 0.1 in mn.PRICE_FEED_LATENCY.buckets and 0.1 in mn.RISK_CHECK_LATENCY.buckets
    assert 0.5 in mn.SIGNAL_LATENCY.buckets and 2.0 in mn.ORDER_EXECUTION_LATENCY.buckets


# --- the cross-check helpers can fail -------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "problem"), [
    ('rate(eafix_tick_received_total{namespace="x"}[5m])', "unknown metric 'eafix_tick_received_total'"),
    ('eafix_http_requests_total{namespace="x", code="500"}', "no label 'code'"),
    ('eafix_price_feed_latency_seconds_bucket{namespace="x", le="0.2"}', "le=0.2 is not a bucket bound"),
    ("sum(eafix_bus_lag)", "selector without a namespace matcher"),
    ('eafix_ticks_received{namespace="x"}', "unknown metric 'eafix_ticks_received'"),  # the _total is missing
])
def test_the_cross_check_catches(expr, problem):
    found = problems_of(expr, require_namespace=True)
    assert any(problem in p for p in found), found


def test_the_cross_check_accepts_runtime_registry_external_and_recorded_metrics():
    for expr in ('sum by (service, route) (rate(eafix_http_requests_total{namespace="x", status=~"5.."}[5m]))',
                 'max by (topic, group) (eafix_bus_lag{namespace="x"})',
                 'eafix_orders_filled_total{namespace="x", broker="paper"}',
                 'redis_up{namespace="x"}', 'eafix:fill_rate:ratio_15m{namespace="x"}'):
        assert problems_of(expr, require_namespace=True) == [], expr


# --- rule files -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule_file", RULE_FILES, ids=[f.stem for f in RULE_FILES])
def test_rule_expressions_parse_and_use_known_metrics(rule_file):
    checked = 0
    for group in yaml.safe_load(rule_file.read_text())["groups"]:
        for rule in group["rules"]:
            problems = problems_of(rule["expr"], require_namespace=True)
            assert not problems, f"{rule.get('alert') or rule.get('record')}: {problems}"
            checked += 1
    assert checked


def test_every_alert_is_documented_and_routable():
    found = alerts()
    assert len(found) >= 30
    names = [r["alert"] for _, r in found]
    assert len(names) == len(set(names))
    for _, rule in found:
        labels, ann = rule["labels"], rule["annotations"]
        assert labels["severity"] in SEVERITIES, rule["alert"]
        assert ann["summary"] and ann["description"], rule["alert"]
        url = ann["runbook_url"]
        assert url.startswith(DEFAULT_RUNBOOK_BASE + "/"), rule["alert"]
        runbook = RUNBOOKS / url.removeprefix(DEFAULT_RUNBOOK_BASE + "/")
        assert runbook.is_file(), f"{rule['alert']}: {runbook} does not exist"
        assert rule["alert"] in runbook.read_text(), f"{runbook.name} does not mention {rule['alert']}"


def test_compliance_alerts_are_labelled_for_compliance_monitor():
    compliance = [r for f, r in alerts() if f == "compliance"]
    assert len(compliance) >= 8
    for rule in compliance:
        assert rule["labels"]["team"] == "compliance"
        assert rule["labels"]["regulation"] in {"MiFID2", "CFTC", "SEC", "FINRA", "internal"}
        assert rule["labels"]["requirement"]


def _alert(name: str) -> dict[str, Any]:
    return next(r for _, r in alerts() if r["alert"] == name)


def _recording(name: str) -> str:
    return next(r["expr"] for _, _, r in rules() if r.get("record") == name)


@pytest.mark.parametrize(("alert", "series", "threshold", "direction"), [
    ("EafixPriceFeedLatencySLO", "eafix:price_feed_latency_seconds:p95_5m", 0.1, ">"),
    ("EafixSignalGenerationLatencySLO", "eafix:signal_generation_seconds:p95_5m", 0.5, ">"),
    ("EafixOrderExecutionLatencySLO", "eafix:order_execution_seconds:p95_5m", 2, ">"),
    ("EafixRiskCheckLatencySLO", "eafix:risk_check_duration_seconds:p95_5m", 0.1, ">"),
    ("EafixFillRateSLO", "eafix:fill_rate:ratio_15m", 0.95, "<"),
])
def test_slo_alerts_match_the_documented_targets(alert, series, threshold, direction):
    expr = _alert(alert)["expr"]
    assert series in metric_names(expr)
    assert re.search(rf"\{re.escape(direction)}\s*{threshold}\b", expr), expr
    assert _alert(alert)["labels"]["slo"]


def test_availability_slo_is_99_9_in_market_hours():
    assert "0.001" in _recording("eafix:availability_error_budget:remaining_30d")
    expr = _alert("EafixMarketHoursAvailabilityViolation")["expr"]
    assert {"eafix:core_services_up:bool", "eafix:market_hours:active"} <= metric_names(expr)
    market = _recording("eafix:market_hours:active")
    assert "hour() >= 11 < 23" in market and "day_of_week() >= 1 <= 5" in market
    core = _recording("eafix:core_services_up:bool")
    assert all(s in core for s in ("data-ingestor", "indicator-engine", "signal-generator", "risk-manager",
                                   "execution-engine"))


@pytest.mark.parametrize(("alert", "metric"), [
    ("EafixServiceDown", "up"), ("EafixHighErrorRatio", "eafix_http_requests_total"),
    ("EafixHighLatency", "eafix_http_request_duration_seconds_bucket"), ("EafixRedisDown", "redis_up"),
    ("EafixPostgresDown", "pg_up"), ("EafixConsumerLag", "eafix_bus_lag"),
    ("EafixConsumerBacklog", "eafix_bus_pending"),
    ("EafixNoTicks", "eafix_ticks_received_total"), ("EafixDeadLetters", "eafix_bus_dead_lettered_total"),
    ("EafixCircuitBreakerOpen", "eafix_circuit_breaker_open"), ("EafixRiskOffActive", "eafix_risk_off_active"),
])
def test_system_alerts_watch_the_right_metric(alert, metric):
    assert metric in metric_names(_alert(alert)["expr"])


def test_service_down_selects_the_label_every_service_monitor_copies():
    expr = _alert("EafixServiceDown")["expr"]
    (up,) = [sel for sel in selectors(promql_parser.parse(expr)) if sel.name == "up"]
    matchers = {m.name: m.value for m in up.matchers.matchers}
    assert not any(s in expr for s in SERVICES)  # no list of names to keep in step with the catalogue
    r = render_profile("eafix-trading:env-prod")
    monitors = r.select(kind="ServiceMonitor")
    assert len(monitors) == len(SERVICES)
    for sm in monitors:
        (label,) = sm["spec"]["targetLabels"]
        # prometheus-operator copies the Service's label under Prometheus' sanitized label name
        name = re.sub(r"[^a-zA-Z0-9_]", "_", label)
        assert matchers[name] == r.one("Service", sm["metadata"]["name"])["metadata"]["labels"][label]


def test_lag_and_no_tick_thresholds():
    assert "> 1000" in _alert("EafixConsumerLag")["expr"] and "> 1000" in _alert("EafixConsumerBacklog")["expr"]
    no_ticks = _alert("EafixNoTicks")["expr"]
    assert "[5m]" in no_ticks and "eafix:market_hours:active" in no_ticks


def test_recorded_series_come_from_the_same_file_or_common():
    by_file: dict[str, set[str]] = {}
    for f, _, r in rules():
        if "record" in r:
            by_file.setdefault(f, set()).add(r["record"])
    for f, _, r in rules():
        used = {n for n in metric_names(r["expr"]) if ":" in n}
        assert used <= by_file.get(f, set()) | by_file["common"], (f, used)


# --- the PrometheusRule objects -------------------------------------------------------------------------

def test_prometheus_rules_render_only_when_enabled(render_with):
    assert not render_with().select(kind="PrometheusRule")
    prod = render_profile("eafix-trading:env-prod").select(kind="PrometheusRule")
    assert sorted(o["metadata"]["name"] for o in prod) == [f"eafix-{f.stem}" for f in RULE_FILES]
    assert all(o["metadata"]["labels"]["release"] == "kube-prometheus-stack" for o in prod)
    assert not custom_resources.check(prod)


def test_rule_objects_carry_the_files_and_the_release_namespace(render_with):
    r = render_with({"prometheusRule": {"enabled": True, "runbookBaseUrl": "https://wiki.example/runbooks/",
                                        "additionalAlertLabels": {"cluster": "eu-1", "severity": "ignored"}}},
                    namespace="trading-b")
    rendered = {o["metadata"]["name"].removeprefix("eafix-"): o for o in r.select(kind="PrometheusRule")}
    for f in RULE_FILES:
        source = yaml.safe_load(f.read_text())["groups"]
        groups = rendered[f.stem]["spec"]["groups"]
        assert [g["name"] for g in groups] == [g["name"] for g in source]
        for src, out in zip(source, groups, strict=True):
            for a, b in zip(src["rules"], out["rules"], strict=True):
                assert b["expr"] == a["expr"].replace('"eafix-trading"', '"trading-b"')
                if "alert" in a:
                    assert b["labels"] == {**a["labels"], "cluster": "eu-1"}  # the alert's own severity wins
                    assert b["annotations"]["runbook_url"].startswith("https://wiki.example/runbooks/")
    assert "eafix-trading" not in json.dumps([o["spec"] for o in rendered.values()])


def test_a_rule_group_can_be_switched_off(render_with):
    r = render_with({"prometheusRule": {"enabled": True, "groups": {"compliance": {"enabled": False}}}})
    names = {o["metadata"]["name"] for o in r.select(kind="PrometheusRule")}
    assert "eafix-compliance" not in names and "eafix-slo" in names


# --- ServiceMonitors ------------------------------------------------------------------------------------

SCRAPE = {"data-ingestor": "5s", "signal-generator": "5s", "risk-manager": "5s", "execution-engine": "5s",
          "indicator-engine": "10s", "gui-gateway": "10s", "calendar-ingestor": "30s", "reporter": "30s",
          "reentry-matrix-svc": "15s"}


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_service_monitor_per_service_with_release_label_and_interval(env):
    r = render_profile(f"eafix-trading:env-{env}")
    monitors = {o["metadata"]["name"]: o for o in r.select(kind="ServiceMonitor")}
    assert set(monitors) == set(SERVICES)
    for svc, sm in monitors.items():
        assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        endpoint = sm["spec"]["endpoints"][0]
        assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
        if svc in SCRAPE:
            assert endpoint["interval"] == SCRAPE[svc], svc
    assert not custom_resources.check(list(monitors.values()))


# --- dashboards -----------------------------------------------------------------------------------------

VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _dashboard_exprs(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def _substitute(expr: str, variables: set[str]) -> str:
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    for var in variables:
        expr = expr.replace(f"${{{var}}}", "x").replace(f"${var}", "x")
    return expr


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=[p.stem for p in DASHBOARD_FILES])
def test_dashboard_is_valid_and_queries_known_metrics(path: Path):
    doc = json.loads(path.read_text())
    variables = {v["name"] for v in doc["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    exprs = list(_dashboard_exprs(doc))
    assert len(exprs) >= 8
    for title, expr in exprs:
        text = _substitute(expr, variables)
        assert "$" not in text, f"{title}: unresolved variable in {expr}"
        assert not problems_of(text, require_namespace=True), (title, problems_of(text, require_namespace=True))
    for panel in doc["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_dashboard_uids_are_unique_and_files_match_their_uid():
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARD_FILES]
    assert len(uids) == len(set(uids)) == 3
    assert [f"eafix-{p.stem}" for p in DASHBOARD_FILES] == uids


def test_trading_overview_covers_the_requested_panels():
    doc = json.loads((DASHBOARDS_DIR / "trading-overview.json").read_text())
    text = json.dumps([e for _, e in _dashboard_exprs(doc)])
    for needle in ("eafix_bus_published_total", "eafix:price_feed_latency_seconds:p95_5m",
                   "eafix:order_execution_seconds:p95_5m", "eafix_signals_generated_total",
                   "eafix_orders_filled_total", "eafix:pnl_total_usd:by_symbol", "eafix:drawdown:ratio",
                   "eafix_exposure_usd"):
        assert needle in text, needle


def test_dashboards_become_configmaps_for_the_grafana_sidecar(render_with):
    assert not render_with().select(kind="ConfigMap", name="eafix-dashboard-trading-overview")
    r = render_with({"dashboards": {"enabled": True, "label": "grafana_dashboard_eafix", "labelValue": "yes",
                                    "annotations": {"grafana_folder": "EAFIX"},
                                    "boards": {"slo-error-budget": {"enabled": False}}}})
    maps = {o["metadata"]["name"]: o for o in r.select(kind="ConfigMap") if "dashboard" in o["metadata"]["name"]}
    assert set(maps) == {"eafix-dashboard-trading-overview", "eafix-dashboard-service-golden-signals"}
    for name, cm in maps.items():
        assert cm["metadata"]["labels"]["grafana_dashboard_eafix"] == "yes"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "EAFIX"
        board = name.removeprefix("eafix-dashboard-")
        assert json.loads(cm["data"][f"{board}.json"]) == json.loads((DASHBOARDS_DIR / f"{board}.json").read_text())


# --- the route of compliance alerts to compliance-monitor ----------------------------------------------

def test_compliance_route_reaches_the_webhook_with_the_shared_secret():
    amc = render_profile("eafix-infra:env-prod").one("AlertmanagerConfig", "eafix-compliance")
    assert {"name": "team", "value": "compliance", "matchType": "="} in amc["spec"]["route"]["matchers"]
    hook = amc["spec"]["receivers"][0]["webhookConfigs"][0]
    assert hook["url"] == f"http://compliance-monitor.eafix-trading.svc:{PORTS['compliance-monitor']}/webhook/alertmanager"
    assert hook["httpConfig"]["authorization"]["credentials"] == {"name": "trading-secrets",
                                                                  "key": "ALERTMANAGER_WEBHOOK_SECRET"}
    # the key compliance-monitor mounts from the same Secret
    deploy = render_profile("eafix-trading:env-prod").one("Deployment", "compliance-monitor")
    assert "ALERTMANAGER_WEBHOOK_SECRET" in json.dumps(deploy["spec"]["template"]["spec"]["volumes"])


def test_plain_alertmanager_example_routes_compliance_alerts():
    doc = yaml.safe_load((REPO / "docs" / "alertmanager-routing.yaml").read_text())
    route = next(r for r in doc["route"]["routes"] if r["receiver"] == "compliance-monitor")
    assert 'team="compliance"' in route["matchers"]
    receiver = next(r for r in doc["receivers"] if r["name"] == "compliance-monitor")
    hook = receiver["webhook_configs"][0]
    assert hook["url"].endswith(":9201/webhook/alertmanager")
    assert hook["http_config"]["authorization"]["credentials_file"].endswith("/ALERTMANAGER_WEBHOOK_SECRET")
    names = {r["name"] for r in doc["receivers"]}
    assert {r["receiver"] for r in doc["route"]["routes"]} | {doc["route"]["receiver"]} <= names
