"""The live feed's pure parts: which channels a topic feeds, channel checks with clear errors, the
hub's fan-out to subscribers only, and back-pressure (a full queue drops that client, not the others,
and publishing never waits)."""

from __future__ import annotations

import pytest

from eafix.gui_gateway.live_feed import ChannelError, FeedHub, channels_of, check_channels
from eafix.gui_gateway.ws_routes import handle


def test_topics_feed_their_channels():
    assert channels_of("eafix.price.tick") == ("ticks",)
    assert channels_of("eafix.execution.reports") == ("orders", "positions")
    assert channels_of("eafix.system.risk_off") == ("alerts", "status")
    assert channels_of("eafix.price.bars") == ()


@pytest.mark.parametrize(("names", "message"), [
    (["ticks", "news"], "unknown channel(s) news (known: ticks, signals, orders, positions, alerts, status)"),
    ([], "`channels` must be a non-empty list"),
    ("ticks", "`channels` must be a non-empty list"),
    ([1], "`channels` must be a non-empty list"),
])
def test_bad_channel_lists_are_named(names, message):
    with pytest.raises(ChannelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_channels(names)


@pytest.mark.anyio
async def test_a_full_queue_drops_only_that_client():
    hub = FeedHub(queue_size=2)
    slow, fast, other = hub.join("slow"), hub.join("fast"), hub.join("other")
    slow.channels, fast.channels, other.channels = {"ticks"}, {"ticks"}, {"orders"}
    for n in range(2):
        assert hub.publish("ticks", {"n": n}) == 2
        assert fast.queue.get_nowait() == {"n": n}  # fast reads as it goes
    assert hub.publish("ticks", {"n": 2}) == 1  # slow's queue (2) is full: dropped, fast still served
    assert slow.dropped == "too slow: 2 messages waiting" and slow.gone.is_set()
    assert hub.clients == {fast, other} and hub.dropped_total == 1
    assert fast.queue.get_nowait() == {"n": 2}
    assert other.queue.empty()  # never subscribed to ticks


@pytest.mark.anyio
async def test_client_messages_change_subscriptions_or_answer_an_error():
    hub = FeedHub(queue_size=10)
    client = hub.join("c")
    for text in ('{"type": "subscribe", "channels": ["ticks", "orders"]}',
                 '{"type": "unsubscribe", "channels": ["ticks"]}', "{nope", '{"type": "ping"}', "[1]"):
        handle(client, hub, text)
    replies = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    assert replies == [{"type": "subscribed", "channels": ["orders", "ticks"]},
                       {"type": "subscribed", "channels": ["orders"]},
                       {"type": "error", "detail": "messages must be JSON objects"},
                       {"type": "pong"},
                       {"type": "error", "detail": "unknown message type None (subscribe, unsubscribe, ping)"}]
    assert client.channels == {"orders"}
