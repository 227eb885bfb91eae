"""What gui-gateway proxies, as data: (gateway path, role, peer, peer path, query parameters passed
through, method). Pure. Path parameters `{name}` are copied into the peer path, each as one
percent-encoded segment. A POST is an operator action: it needs admin here and is written to the
operator audit (`audit_action`). A peer answer slower than `timeout_s` is a 502 naming the peer."""

from __future__ import annotations

from dataclasses import dataclass

from eafix.gui_gateway.principals import Role


@dataclass(frozen=True)
class ProxyRoute:
    path: str
    role: Role
    peer: str
    peer_path: str
    params: tuple[str, ...] = ()
    summary: str = ""
    method: str = "GET"
    audit_action: str | None = None  # the audit's `action` of a POST
    fixed: tuple[tuple[str, str], ...] = ()  # query parameters always sent (the caller cannot override them)
    timeout_s: float = 5.0  # reads of stored state answer at once; only a drawn report takes seconds


# reporter draws the whole ledger's report (Plotly) per request: seconds for a long ledger on a busy node
REPORT_TIMEOUT_S = 60.0


V = Role.VIEWER
RANGE = ("from", "to")
PROXY_ROUTES: tuple[ProxyRoute, ...] = (
    ProxyRoute("/api/v1/positions", V, "execution-engine", "/api/v1/positions", ("status", "symbol"),
               "Positions (open by default)"),
    ProxyRoute("/api/v1/trades", V, "execution-engine", "/api/v1/positions", ("symbol",),
               "Closed positions (trades)", fixed=(("status", "CLOSED"),)),
    ProxyRoute("/api/v1/orders", V, "execution-engine", "/api/v1/orders", ("status", "symbol", "limit"),
               "Orders, newest first"),
    ProxyRoute("/api/v1/prices/latest", V, "data-ingestor", "/api/v1/prices/latest", ("symbol",),
               "Latest accepted price per symbol"),
    ProxyRoute("/api/v1/indicators/{symbol}", V, "indicator-engine", "/api/v1/indicators/{symbol}", ("timeframe",),
               "Latest indicator vector of a symbol"),
    ProxyRoute("/api/v1/signals", V, "signal-generator", "/api/v1/signals/recent", ("limit", "symbol", "kind"),
               "Recent signals and suppressions"),
    ProxyRoute("/api/v1/risk-off", V, "signal-generator", "/api/v1/risk-off", (), "Risk-off latch state"),
    ProxyRoute("/api/v1/risk/portfolio", V, "risk-manager", "/api/v1/portfolio", (),
               "Balance, today's realized P&L, open positions against the limits"),
    ProxyRoute("/api/v1/calendar/events", V, "calendar-ingestor", "/api/v1/calendar/events",
               ("hours_ahead", "derived"), "Upcoming economic events"),
    ProxyRoute("/api/v1/calendar/blackouts", V, "calendar-ingestor", "/api/v1/calendar/blackouts", (),
               "Blackout windows in force"),
    ProxyRoute("/api/v1/reentry/chains/{trade_id}", V, "reentry-matrix-svc", "/api/v1/reentry/chains/{trade_id}",
               (), "Re-entry chain of a trade"),
    ProxyRoute("/api/v1/reentry/matrix", V, "reentry-matrix-svc", "/api/v1/reentry/matrix", (),
               "The re-entry matrix in force"),
    ProxyRoute("/api/v1/reports/daily-pnl", V, "reporter", "/api/v1/reports/daily-pnl", ("date",), "Daily P&L"),
    ProxyRoute("/api/v1/reports/summary", V, "reporter", "/api/v1/reports/summary", RANGE, "Trading summary"),
    ProxyRoute("/api/v1/reports/equity.csv", V, "reporter", "/api/v1/reports/equity.csv", RANGE, "Equity series"),
    ProxyRoute("/api/v1/reports/report.html", V, "reporter", "/api/v1/reports/report.html", RANGE, "HTML report",
               timeout_s=REPORT_TIMEOUT_S),
    ProxyRoute("/api/v1/compliance/audit", Role.ADMIN, "compliance-monitor", "/api/v1/compliance/audit",
               ("after", "limit"), "Compliance audit trail"),
    ProxyRoute("/api/v1/compliance/approvals", V, "compliance-monitor", "/api/v1/compliance/approvals", (),
               "Compliance decisions waiting for approval"),
    ProxyRoute("/api/v1/compliance/policy", V, "compliance-monitor", "/api/v1/compliance/policy", (),
               "The regulation table in force"),
    ProxyRoute("/api/v1/compliance/approvals/{approval_id}", Role.ADMIN, "compliance-monitor",
               "/api/v1/compliance/approvals/{approval_id}", (), "Approve a compliance decision (admin, audited)",
               method="POST", audit_action="compliance-approval"),
)
