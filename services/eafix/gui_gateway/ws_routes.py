"""The live feed's WebSocket `/ws` (viewer; authentication in security.requires_websocket).

Client -> gateway, JSON text messages:
    {"type": "auth", "api_key": "<id>.<secret>"} | {"type": "auth", "token": "<JWT>"}   first, unless
                                                   the handshake carried X-API-Key / Authorization
    {"type": "subscribe", "channels": ["ticks", "positions", ...]}
    {"type": "unsubscribe", "channels": [...]}
    {"type": "ping"}
Gateway -> client:
    {"type": "welcome", "principal", "roles", "channels": <all channels>}
    {"type": "subscribed", "channels": <the client's channels now>}       after (un)subscribe
    {"type": "event", "channel", "event_type", "event_id", "ts_event", "topic", "data"}
    {"type": "status", "channel": "status", "data": <GET /api/v1/system/status>}
    {"type": "pong"} | {"type": "error", "detail"}                         bad input: the socket stays open
Close codes: 1008 authentication refused; 1013 the client read too slowly and was dropped (its
bounded queue overflowed; reconnect); 1000 the gateway is stopping."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from starlette.status import WS_1013_TRY_AGAIN_LATER

from eafix.gui_gateway.live_feed import CHANNELS, ChannelError, FeedClient, FeedHub, check_channels
from eafix.gui_gateway.principals import Principal, Role
from eafix.gui_gateway.security import Authenticator

CLOSE_SECONDS = 2.0  # a close frame a dropped client does not take is abandoned after this


def _reply(client: FeedClient, hub: FeedHub, message: dict[str, Any]) -> None:
    try:
        client.queue.put_nowait(message)
    except asyncio.QueueFull:
        hub.drop(client, f"too slow: {client.queue_size} messages waiting")


def handle(client: FeedClient, hub: FeedHub, text: str) -> None:
    """One client message: (un)subscribe, ping, or an error reply naming what is wrong."""
    try:
        message = json.loads(text)
    except ValueError:
        _reply(client, hub, {"type": "error", "detail": "messages must be JSON objects"})
        return
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "ping":
        _reply(client, hub, {"type": "pong"})
        return
    if kind not in ("subscribe", "unsubscribe"):
        detail = f"unknown message type {kind!r} (subscribe, unsubscribe, ping)"
        _reply(client, hub, {"type": "error", "detail": detail})
        return
    try:
        names = check_channels(message.get("channels"))
    except ChannelError as exc:
        _reply(client, hub, {"type": "error", "detail": str(exc)})
        return
    if kind == "subscribe":
        client.channels |= names
    else:
        client.channels -= names
    _reply(client, hub, {"type": "subscribed", "channels": sorted(client.channels)})


async def _receive(websocket: WebSocket, client: FeedClient, hub: FeedHub) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            handle(client, hub, await websocket.receive_text())


async def _send(websocket: WebSocket, client: FeedClient) -> None:
    while True:
        message = await client.queue.get()
        await websocket.send_text(json.dumps(message, separators=(",", ":")))


def build_ws_router(auth: Authenticator, hub: FeedHub) -> APIRouter:
    router = APIRouter(tags=["gateway"])
    viewer = Depends(auth.requires_websocket(Role.VIEWER))

    @router.websocket("/ws", name="live-feed")
    async def live_feed(websocket: WebSocket, principal: Principal = viewer) -> None:
        client = hub.join(principal.name)
        _reply(client, hub, {"type": "welcome", "principal": principal.name,
                             "roles": principal.role_labels.split(","), "channels": list(CHANNELS)})
        tasks = [asyncio.create_task(_receive(websocket, client, hub)), asyncio.create_task(_send(websocket, client)),
                 asyncio.create_task(client.gone.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.leave(client)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if client.dropped is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(WS_1013_TRY_AGAIN_LATER, client.dropped), CLOSE_SECONDS)

    return router
