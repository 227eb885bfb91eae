"""gui-gateway's live feed `/ws` on a real uvicorn server and real Redis: authentication at connect
(first message or handshake headers; refusals close with 1008 and are audited), channels fed from
the bus topics a client subscribed to (and only those), clear errors for bad messages, and
back-pressure: a client that stops reading is dropped while a reading client gets every message."""

from __future__ import annotations

import asyncio
import json
import socket
from decimal import Decimal as D

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.uri import parse_uri

from eafix.contracts import SystemRiskOff, make_envelope
from eafix.gui_gateway.principals import Role
from eafix.runtime.clock import WallClock
from service.asgi import served
from service.factories import T0, tick
from service.gateway_env import key_pair
from service.harness import GUARD, ServiceEnv, eventually, fresh_env, publish

pytestmark = pytest.mark.anyio
VIEWER_KEY, VIEWER_LINE = key_pair("desk", Role.VIEWER)


@pytest.fixture
async def env(monkeypatch, redis_server, tmp_path, migrated_db) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path, migrated_db)


async def refusals(base: str, admin_key: str, after: int = 0) -> tuple[list[dict], int]:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": admin_key}) as client:
        page = (await client.get("/api/v1/audit", params={"action": "auth-failure", "after": after,
                                                          "limit": 500})).json()
    return page["entries"], page["next_after"] or after


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


async def next_message(ws, kind: str | None = None) -> dict:
    """The next message (of type `kind`, skipping others such as status snapshots)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), GUARD))
        if kind is None or message["type"] == kind:
            return message


async def login(ws, key: str = VIEWER_KEY) -> dict:
    await ws.send(json.dumps({"type": "auth", "api_key": key}))
    return await next_message(ws, "welcome")


async def close_code(ws) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), GUARD)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_connect_is_authenticated_and_refusals_close_with_policy_violation(env):
    admin_only = key_pair("ops", Role.ADMIN)
    app = env.app("gui-gateway", api_keys=f"{VIEWER_LINE}\n{admin_only[1]}")
    with served(app) as base:
        _, before = await refusals(base, admin_only[0])
        async with connect(ws_url(base)) as ws:  # no credentials: a subscribe is not an auth message
            await ws.send(json.dumps({"type": "subscribe", "channels": ["ticks"]}))
            assert await close_code(ws) == 1008
        async with connect(ws_url(base)) as ws:
            await ws.send(json.dumps({"type": "auth", "api_key": "desk.wrong-secret"}))
            assert await close_code(ws) == 1008
        async with connect(ws_url(base)) as ws:
            await ws.send("not json")
            assert await close_code(ws) == 1008
        async with connect(ws_url(base)) as ws:
            welcome = await login(ws)
            assert (welcome["principal"], welcome["roles"]) == ("apikey:desk", ["viewer"])
            assert welcome["channels"] == ["ticks", "signals", "orders", "positions", "alerts", "status"]
        async with connect(ws_url(base), additional_headers={"X-API-Key": admin_only[0]}) as ws:
            assert (await next_message(ws, "welcome"))["principal"] == "apikey:ops"
        refused, _ = await refusals(base, admin_only[0], before)
    on_ws = [e for e in refused if e["detail"]["path"] == "/ws"]  # other tests may share the database
    assert [(e["actor"], e["detail"]["method"], e["result"]) for e in on_ws] == [
        ("anonymous", "WEBSOCKET", "refused")] * 3


async def test_a_client_gets_the_channels_it_subscribed_to(env):
    app = env.app("gui-gateway", api_keys=VIEWER_LINE, ws_status_seconds="0.5")
    with served(app) as base:
        async with connect(ws_url(base)) as ws:
            await login(ws)
            await ws.send(json.dumps({"type": "subscribe", "channels": ["ticks", "nope"]}))
            error = await next_message(ws)
            assert error == {"type": "error", "detail": "unknown channel(s) nope (known: ticks, signals, orders, "
                                                        "positions, alerts, status)"}
            await ws.send(json.dumps({"type": "launch"}))
            assert "unknown message type 'launch'" in (await next_message(ws))["detail"]
            await ws.send(json.dumps({"type": "subscribe", "channels": ["ticks"]}))
            assert await next_message(ws) == {"type": "subscribed", "channels": ["ticks"]}
            feed = app.state.parts.state["live_feed"]
            await eventually(lambda: feed.reading, "the feed reading the bus")  # it reads from then on
            # risk-off feeds alerts and status, to which this client is not subscribed: it gets only the tick
            await publish(env, SystemRiskOff(active=True, reason="drill", source="test"))
            await publish(env, tick("EURUSD", "1.10420", at=T0))
            event = await next_message(ws)
            assert (event["type"], event["channel"], event["event_type"]) == ("event", "ticks", "PriceTick")
            assert (event["data"]["symbol"], D(event["data"]["bid"]), D(event["data"]["ask"])) == (
                "EURUSD", D("1.10420"), D("1.10430"))

            await ws.send(json.dumps({"type": "subscribe", "channels": ["alerts", "status"]}))
            assert await next_message(ws, "subscribed") == {"type": "subscribed",
                                                            "channels": ["alerts", "status", "ticks"]}
            status = await next_message(ws, "status")  # the periodic snapshot: GET /api/v1/system/status
            assert status["data"]["risk_off"]["active"] is True and status["data"]["risk_off"]["reason"] == "drill"
            await publish(env, SystemRiskOff(active=False, reason="over", source="test"))
            alert = await next_message(ws, "event")
            assert (alert["channel"], alert["event_type"], alert["data"]["reason"]) == ("alerts", "SystemRiskOff",
                                                                                        "over")
            await ws.send(json.dumps({"type": "ping"}))
            assert (await next_message(ws, "pong")) == {"type": "pong"}


def stalled_client(base: str, key: str) -> tuple[socket.socket, ClientProtocol]:
    """A WebSocket client that authenticates, subscribes to ticks and then never reads (a tiny
    receive buffer, so the gateway's writes back up quickly)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(GUARD)
    sock.connect((host, int(port)))
    protocol = ClientProtocol(parse_uri(ws_url(base)))
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    while protocol.handshake_exc is None and not protocol.events_received():  # the 101 answer
        protocol.receive_data(sock.recv(4096))
    assert protocol.handshake_exc is None, protocol.handshake_exc
    for message in ({"type": "auth", "api_key": key}, {"type": "subscribe", "channels": ["ticks"]}):
        protocol.send_text(json.dumps(message).encode())
    sock.sendall(b"".join(protocol.data_to_send()))
    return sock, protocol


def drain(sock: socket.socket, protocol: ClientProtocol) -> Close | None:
    """Reads the stalled client's socket to its end; the close frame it got, if any."""
    while True:
        data = sock.recv(65536)
        if not data:
            protocol.receive_eof()
            return protocol.close_rcvd
        protocol.receive_data(data)
        for _ in protocol.events_received():
            pass
        if protocol.close_rcvd is not None:
            return protocol.close_rcvd


BATCH = 50


async def publish_ticks(env: ServiceEnv, bids: list[D]) -> None:
    """EURUSD ticks at these bids, in one round trip."""
    async with env.redis() as redis:
        pipe = redis.pipeline(transaction=False)
        for bid in bids:
            doc = make_envelope(tick("EURUSD", str(bid), at=T0), "test", WallClock().now()).model_dump(mode="json")
            pipe.xadd("eafix.price.tick", {"envelope": json.dumps(doc)})
        await pipe.execute()


async def test_a_client_that_stops_reading_is_dropped_and_never_blocks_the_others(env):
    app = env.app("gui-gateway", api_keys=VIEWER_LINE, ws_queue_size="100")
    hub = app.state.parts.state["feed_hub"]
    with served(app) as base:
        async with connect(ws_url(base)) as fast:
            await login(fast)
            await fast.send(json.dumps({"type": "subscribe", "channels": ["ticks"]}))
            await next_message(fast, "subscribed")
            sock, protocol = stalled_client(base, VIEWER_KEY)
            feed = app.state.parts.state["live_feed"]
            await eventually(lambda: len(hub.clients) == 2 and all(c.channels for c in hub.clients) and feed.reading,
                             "both clients subscribed, the feed reading")
            received, batches = [], 0
            # lockstep with the reading client (its queue never holds more than a batch); the stalled one
            # backs up once the kernel's socket buffers (up to tcp_wmem's 4 MiB) and the transport's are full
            while hub.dropped_total == 0:
                assert batches < 1000, "the stalled client was never dropped"
                bids = [D("1.10000") + D(n) / 100000 for n in range(batches * BATCH, (batches + 1) * BATCH)]
                await publish_ticks(env, bids)
                for _ in bids:
                    received.append(D((await next_message(fast, "event"))["data"]["bid"]))
                batches += 1
            assert received == [D("1.10000") + D(n) / 100000 for n in range(batches * BATCH)]
            assert hub.dropped_total == 1 and len(hub.clients) == 1  # the reading client is still there
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": VIEWER_KEY}) as client:
                status = (await client.get("/api/v1/system/status")).json()
            assert status["live_feed"] == {"clients": 1, "dropped_slow_clients": 1}
            await publish(env, tick("EURUSD", "1.20000", at=T0))
            assert D((await next_message(fast, "event"))["data"]["bid"]) == D("1.20000")
            closed = await asyncio.to_thread(drain, sock, protocol)
            sock.close()
            assert closed is None or closed.code == 1013  # dropped: the close frame, if it got through


async def test_websocket_connects_count_against_the_source_rate_limit(env):
    from websockets.exceptions import InvalidStatus

    limits = json.dumps({"source_rps": 0.01, "source_burst": 2, "principal_rps": 10, "principal_burst": 40})
    app = env.app("gui-gateway", api_keys=VIEWER_LINE, rate_limit=limits)
    with served(app) as base:
        for _ in range(2):  # the burst: two connects (each could make the gateway verify a key)
            async with connect(ws_url(base)) as ws:
                await login(ws)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(base)):
                pass
    assert refused.value.response.status_code == 403
