"""compliance-monitor's HTTP adapter of gui-gateway's trading controls, against a real server speaking
the gateway's contract (service.gateway_contract): key header, retries on 503, final answers, outages."""

from __future__ import annotations

import pytest

from eafix.compliance_monitor.trading_control import Control, GatewayTradingControl
from service.asgi import served
from service.gateway_contract import GatewayState, gateway_app
from service.servers import free_port

pytestmark = pytest.mark.anyio
KEY = "cm.key-1"


@pytest.mark.parametrize("control", list(Control))
async def test_each_control_posts_the_reason_with_the_api_key(control):
    state = GatewayState(KEY)
    with served(gateway_app(state)) as url:
        client = GatewayTradingControl(url, KEY, backoff=0)
        result = await client.apply(control, "test reason")
        await client.aclose()
    assert (result.result, result.audit_id) == ("ok", "A-1")
    assert state.calls == [{"action": control.value, "reason": "test reason"}]


async def test_503_is_retried_until_the_gateway_answers():
    state = GatewayState(KEY, unavailable=2)
    with served(gateway_app(state)) as url:
        client = GatewayTradingControl(url, KEY, attempts=3, backoff=0)
        result = await client.apply(Control.PAUSE, "r")
        await client.aclose()
    assert result.result == "ok" and len(state.calls) == 1 and state.unavailable == 0


async def test_retries_give_up_after_the_attempts():
    state = GatewayState(KEY, unavailable=5)
    with served(gateway_app(state)) as url:
        client = GatewayTradingControl(url, KEY, attempts=2, backoff=0)
        result = await client.apply(Control.PAUSE, "r")
        await client.aclose()
    assert result.result == "failed" and "HTTP 503" in result.details[0] and state.unavailable == 3


async def test_a_refused_key_is_final_and_failed():
    state = GatewayState(KEY)
    with served(gateway_app(state)) as url:
        client = GatewayTradingControl(url, "cm.wrong", attempts=3, backoff=0)
        result = await client.apply(Control.PAUSE, "r")
        await client.aclose()
    assert result.result == "failed" and result.details[0].startswith("HTTP 401") and state.refused == 1


async def test_an_unreachable_gateway_is_a_failed_result_not_an_exception():
    client = GatewayTradingControl(f"http://127.0.0.1:{free_port()}", KEY, attempts=2, backoff=0, timeout=2)
    result = await client.apply(Control.STOP_ALL, "r")
    await client.aclose()
    assert result.result == "failed" and "unreachable after 2 attempts" in result.details[0]
