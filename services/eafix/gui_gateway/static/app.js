// EAFIX operator UI: vanilla JavaScript, no build step. Data comes from gui-gateway's API (X-API-Key
// header) and its live feed /ws (the key in the first message); text is always set with textContent.
"use strict";

const KEY = "eafix.apiKey";
const CHANNELS = ["ticks", "signals", "orders", "positions", "alerts", "status"];
const MAX_SIGNALS = 100;
const $ = (id) => document.getElementById(id);

const state = { prices: {}, positions: [], socket: null, retry: null, page: "status", timers: {} };

function apiKey() { return sessionStorage.getItem(KEY); }

async function api(path, options = {}) {
  const headers = { "X-API-Key": apiKey() || "", ...(options.body ? { "Content-Type": "application/json" } : {}) };
  const answer = await fetch(path, { ...options, headers });
  if (answer.status === 401) { logout("session refused: log in again"); throw new Error("401"); }
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : await answer.text();
  if (!answer.ok) { throw new Error(typeof body === "object" && body.detail ? JSON.stringify(body.detail) : String(body)); }
  return body;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) { td.className = cls; }
  tr.appendChild(td);
  return td;
}

function fill(tbodyId, rows, render) {
  const tbody = $(tbodyId);
  tbody.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    render(tr, row);
    tbody.appendChild(tr);
  }
}

function later(name, fn, ms = 300) {  // coalesce bursts of feed events into one refresh
  clearTimeout(state.timers[name]);
  state.timers[name] = setTimeout(() => fn().catch(showError), ms);
}

function showError(err) { if (err.message !== "401") { console.error(err); } }

// --- login ----------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  $("login-error").textContent = "";
  const answer = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ api_key: key }) });
  if (!answer.ok) {
    const body = await answer.json().catch(() => ({}));
    $("login-error").textContent = `refused: ${body.detail || answer.status}`;
    return;
  }
  sessionStorage.setItem(KEY, key);
  $("api-key").value = "";
  start(await answer.json());
}

function logout(message) {
  sessionStorage.removeItem(KEY);
  if (state.socket) { state.socket.onclose = null; state.socket.close(); state.socket = null; }
  clearTimeout(state.retry);
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function start(who) {
  $("login").hidden = true;
  $("app").hidden = false;
  $("whoami").textContent = `${who.principal} (${who.roles.join(", ")})`;
  connect();
  show(location.hash.slice(1) || "status");
  await Promise.all([loadStatus(), loadPositions(), loadSignals(), loadOrders()].map((p) => p.catch(showError)));
}

// --- pages ----------------------------------------------------------------------------------------

const LOADERS = { status: loadStatus, positions: loadPositions, signals: loadSignals, orders: loadOrders,
                  calendar: loadCalendar, audit: loadAudit, controls: async () => {} };

function show(page) {
  if (!LOADERS[page]) { page = "status"; }
  state.page = page;
  for (const section of document.querySelectorAll(".page")) { section.hidden = section.id !== `page-${page}`; }
  for (const button of document.querySelectorAll("#nav button")) {
    button.classList.toggle("active", button.dataset.page === page);
  }
  history.replaceState(null, "", `#${page}`);
  $("page-error").textContent = "";
  LOADERS[page]().catch((err) => {  // e.g. the audit for a viewer: say so instead of an empty table
    if (err.message !== "401") { $("page-error").textContent = `${page}: ${err.message}`; }
  });
}

function renderStatus(status) {
  const risk = status.risk_off;
  const badge = $("trading-state");
  badge.textContent = risk.active ? "TRADING PAUSED" : "TRADING ACTIVE";
  badge.className = `badge ${risk.active ? "bad" : "ok"}`;
  $("risk-off").textContent = risk.active
    ? `Risk-off latched since ${risk.since || "?"} by ${risk.source || "?"}: ${risk.reason || ""}`
    : "Risk-off released: new signals are allowed.";
  if (status.live_feed) {
    $("live-feed").textContent = `live feed: ${status.live_feed.clients} client(s) connected, `
      + `${status.live_feed.dropped_slow_clients} dropped as too slow since the gateway started`;
  }
  $("problems").replaceChildren(...(status.problems.length ? status.problems : ["none"]).map((p) => {
    const li = document.createElement("li");
    li.textContent = p;
    return li;
  }));
  fill("services", Object.entries(status.services), (tr, [name, s]) => {
    cell(tr, name); cell(tr, s.ready ? "ready" : `NOT READY ${s.error || ""}`, s.ready ? "up" : "down");
    cell(tr, s.version);
  });
  fill("streams", Object.entries(status.streams), (tr, [name, s]) => {
    cell(tr, name); cell(tr, s.lag, "num"); cell(tr, s.pending, "num"); cell(tr, s.dlq, s.dlq ? "num down" : "num");
  });
}

async function loadStatus() { renderStatus(await api("/api/v1/system/status")); }

function pipSize(symbol) { return symbol.endsWith("JPY") ? 0.01 : 0.0001; }

function renderPrices() {
  fill("prices", Object.values(state.prices).sort((a, b) => a.symbol.localeCompare(b.symbol)), (tr, p) => {
    tr.dataset.symbol = p.symbol;
    cell(tr, p.symbol);
    cell(tr, p.bid, `num bid ${p.move || ""}`);
    cell(tr, p.ask, "num ask");
    cell(tr, p.ts);
  });
}

function renderPositions() {
  fill("positions", state.positions, (tr, p) => {
    tr.dataset.position = p.position_id;
    const quote = state.prices[p.symbol];
    const long = p.direction === "LONG";
    const mark = quote ? Number(long ? quote.bid : quote.ask) : null;
    const diff = mark === null ? null : (long ? mark - Number(p.open_price) : Number(p.open_price) - mark);
    const pips = diff === null ? null : diff / pipSize(p.symbol);
    const money = diff === null ? null : diff * Number(p.lots) * 100000;
    const sign = diff === null ? "" : (diff >= 0 ? "up" : "down");
    for (const value of [p.position_id, p.symbol, p.direction, p.lots, p.open_price, p.sl_price, p.tp_price]) {
      cell(tr, value);
    }
    cell(tr, mark === null ? "–" : mark, "num mark");
    cell(tr, pips === null ? "–" : pips.toFixed(1), `num pips ${sign}`);
    cell(tr, money === null ? "–" : money.toFixed(2), `num pnl ${sign}`);
  });
}

function drawEquity(csvText) {
  // reporter's equity.csv: the opening balance, then the balance after each closed trade
  const points = csvText.trim().split("\n").slice(1).map((line) => Number(line.split(",")[1]));
  const canvas = document.getElementById("equity");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (points.length < 2) { document.getElementById("equity-range").textContent = "no closed trade yet"; return; }
  const low = Math.min(...points), high = Math.max(...points), span = high - low || 1;
  const x = (i) => 10 + (i * (canvas.width - 20)) / (points.length - 1);
  const y = (v) => canvas.height - 10 - ((v - low) * (canvas.height - 20)) / span;
  ctx.strokeStyle = "#2563eb";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
  canvas.dataset.points = String(points.length);
  document.getElementById("equity-range").textContent =
    `${points.length - 1} closed trades; equity from ${points[0]} to ${points[points.length - 1]} (low ${low}, high ${high})`;
}

async function loadPositions() {
  const [open, closed, equity] = await Promise.all([api("/api/v1/positions"), api("/api/v1/trades"),
                                                    api("/api/v1/reports/equity.csv")]);
  state.positions = open;
  renderPositions();
  drawEquity(equity);
  closed.sort((a, b) => String(b.close_time).localeCompare(String(a.close_time)));
  fill("trades", closed.slice(0, 20), (tr, t) => {
    tr.dataset.position = t.position_id;
    for (const value of [t.position_id, t.symbol, t.direction, t.lots, t.open_price, t.close_price, t.close_time,
                         t.close_reason]) { cell(tr, value); }
    const sign = Number(t.pnl) >= 0 ? "up" : "down";
    cell(tr, t.pips, `num ${sign}`);
    cell(tr, `${t.pnl} ${t.account_currency}`, `num ${sign}`);
  });
}

function signalRow(tr, item) {
  const d = item.data;
  cell(tr, d.ts);
  cell(tr, item.event_type === "Signal" ? "signal" : "suppressed", item.event_type === "Signal" ? "up" : "down");
  cell(tr, d.symbol); cell(tr, d.strategy); cell(tr, d.direction); cell(tr, d.confidence, "num");
  cell(tr, item.event_type === "Signal" ? `entry ${d.entry_price}, SL ${d.sl_pips} pips` : `${d.reason} ${d.detail || ""}`);
}

async function loadSignals() {
  const recent = await api(`/api/v1/signals?limit=${MAX_SIGNALS}`);
  fill("signals", recent.items, signalRow);
}

function addSignal(message) {
  const tbody = $("signals");
  const tr = document.createElement("tr");
  signalRow(tr, message);
  tbody.prepend(tr);
  while (tbody.children.length > MAX_SIGNALS) { tbody.lastChild.remove(); }
}

async function loadOrders() {
  const orders = await api("/api/v1/orders?limit=100");
  fill("orders", orders, (tr, o) => {
    for (const value of [o.client_order_id, o.symbol, o.direction, o.lots, o.entry_price, o.status]) { cell(tr, value); }
  });
}

async function loadCalendar() {
  const [blackouts, events] = await Promise.all([api("/api/v1/calendar/blackouts"),
                                                 api("/api/v1/calendar/events?hours_ahead=48")]);
  fill("blackouts", blackouts.blackouts, (tr, b) => {
    cell(tr, b.symbol); cell(tr, b.state);
    cell(tr, b.allow_new_trades ? "allowed" : "BLOCKED", b.allow_new_trades ? "up" : "down");
    cell(tr, b.event_title ? `${b.next_event_currency} ${b.event_title} (${b.next_event_impact})` : "–");
    cell(tr, b.minutes_to_event, "num"); cell(tr, b.valid_until_utc);
  });
  fill("events", events.events, (tr, e) => {
    cell(tr, e.scheduled_at); cell(tr, e.currency); cell(tr, e.impact); cell(tr, e.title); cell(tr, e.state);
  });
}

async function loadAudit() {
  let entries = [], after = 0;
  for (let page = 0; page < 20; page += 1) {  // oldest first, 500 a page; the newest 200 are shown
    const answer = await api(`/api/v1/audit?after=${after}&limit=500`);
    entries = entries.concat(answer.entries).slice(-200);
    if (!answer.next_after) { break; }
    after = answer.next_after;
  }
  fill("audit", entries.reverse(), (tr, e) => {
    tr.dataset.action = e.action;
    for (const value of [e.id, e.at, e.actor, e.action, e.reason, e.result, e.correlation_id]) { cell(tr, value); }
  });
}

// --- emergency controls ---------------------------------------------------------------------------

function askControl(action) {
  const dialog = $("confirm");
  dialog.dataset.action = action;
  $("confirm-title").textContent = `Confirm: ${action}`;
  $("confirm-reason").value = "";
  $("confirm-error").textContent = "";
  dialog.showModal();
}

async function confirmControl(event) {
  event.preventDefault();
  const dialog = $("confirm");
  const reason = $("confirm-reason").value.trim();
  if (!reason) { $("confirm-error").textContent = "a reason is required"; return; }
  try {
    const outcome = await api(`/api/v1/trading/${dialog.dataset.action}`, {
      method: "POST", body: JSON.stringify({ reason }) });
    dialog.close();
    $("control-outcome").textContent = `${outcome.action}: ${outcome.result}\n${outcome.details.join("\n")}\n`
      + `audit #${outcome.audit_id}, correlation id ${outcome.correlation_id}`;
    await loadStatus();
  } catch (err) {
    $("confirm-error").textContent = `refused: ${err.message}`;
  }
}

// --- live feed ------------------------------------------------------------------------------------

function feedState(text, cls) { const b = $("feed-state"); b.textContent = `feed: ${text}`; b.className = `badge ${cls}`; }

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  state.socket = socket;
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: "auth", api_key: apiKey() }));
    socket.send(JSON.stringify({ type: "subscribe", channels: CHANNELS }));
  };
  socket.onmessage = (event) => onFeed(JSON.parse(event.data));
  socket.onclose = (event) => {
    state.socket = null;
    if (event.code === 1008) { logout(`live feed refused: ${event.reason}`); return; }
    feedState(`reconnecting (${event.code})`, "bad");
    state.retry = setTimeout(connect, 2000);
  };
}

function onTick(d) {
  const before = state.prices[d.symbol];
  const move = before ? (Number(d.bid) > Number(before.bid) ? "up" : Number(d.bid) < Number(before.bid) ? "down" : before.move) : "";
  state.prices[d.symbol] = { symbol: d.symbol, bid: d.bid, ask: d.ask, ts: d.ts, move };
  later("prices", async () => { renderPrices(); renderPositions(); }, 100);
}

function onFeed(m) {
  if (m.type === "subscribed") { feedState("live", "ok"); return; }
  if (m.type === "status") { renderStatus(m.data); return; }
  if (m.type !== "event") { return; }
  if (m.channel === "ticks") { onTick(m.data); }
  else if (m.channel === "signals") { addSignal(m); }
  else if (m.channel === "orders") { later("orders", loadOrders); }
  else if (m.channel === "positions") { later("positions", loadPositions); }
  else if (m.channel === "alerts" || m.channel === "status") { later("status", loadStatus); }
}

// --- wiring ---------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => login(e).catch((err) => { $("login-error").textContent = err.message; }));
  $("logout").addEventListener("click", () => logout(""));
  for (const button of document.querySelectorAll("#nav button")) {
    button.addEventListener("click", () => show(button.dataset.page));
  }
  for (const button of document.querySelectorAll("[data-control]")) {
    button.addEventListener("click", () => askControl(button.dataset.control));
  }
  $("confirm-form").addEventListener("submit", confirmControl);
  $("confirm-cancel").addEventListener("click", () => $("confirm").close());
  if (apiKey()) {  // a reload keeps the session of this tab
    api("/api/v1/auth/whoami").then(start).catch(() => logout(""));
  }
});
