"""gui-gateway's local API keys (argon2-hashed, from mounted secret files) and the first admin, the
request guards (rate limits with Retry-After, body size, CORS off by default, security headers)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from eafix.gui_gateway.api_keys import ApiKeyError, ApiKeys, parse_key_file
from eafix.gui_gateway.principals import Role
from eafix.gui_gateway.ratelimit import RateLimiter
from eafix.runtime.settings import SettingsError
from service.asgi import client_for
from service.gateway_env import CHEAP, gateway_app, key_pair

pytestmark = pytest.mark.anyio


@pytest.fixture
def keys():
    return {"viewer": key_pair("dash", Role.VIEWER), "trader": key_pair("bot", Role.TRADER),
            "admin": key_pair("first-admin", Role.ADMIN)}


async def test_keys_from_mounted_files_authenticate_with_their_roles(keys, secrets_dir, monkeypatch):
    admin_key, admin_line = keys["admin"]
    admin_id, admin_hash = admin_line.split()[0], admin_line.split()[2]
    secrets_dir(SERVICE_API_KEYS="# automation\n" + keys["viewer"][1] + "\n" + keys["trader"][1],
                SERVICE_BOOTSTRAP_ADMIN=f"{admin_id} {admin_hash}")
    app = gateway_app(monkeypatch)
    async with client_for(app) as client:
        who = await client.get("/api/v1/auth/whoami", headers={"X-API-Key": keys["trader"][0]})
        assert who.json() == {"principal": "apikey:bot", "roles": ["trader"], "via": "api-key"}
        assert (await client.post("/api/v1/trading/pause", json={"reason": "r"},
                                  headers={"X-API-Key": keys["trader"][0]})).status_code == 403
        answer = await client.post("/api/v1/trading/pause", json={"reason": "first admin drill"},
                                   headers={"X-API-Key": admin_key})
        assert answer.status_code == 200 and answer.json()["result"] == "ok"
        login = await client.post("/api/v1/auth/login", json={"api_key": keys["viewer"][0]})
        assert login.status_code == 200 and login.json()["principal"] == "apikey:dash"
        bad_login = await client.post("/api/v1/auth/login", json={"api_key": keys["viewer"][0] + "x"})
        assert bad_login.status_code == 401
    actions = [(r.actor, r.action, r.result) for r in app.state.parts.state["audit"].records]
    assert actions == [("apikey:bot", "auth-failure", "refused"), ("apikey:first-admin", "pause", "ok"),
                       ("apikey:dash", "login", "ok"), ("anonymous", "auth-failure", "refused")]


@pytest.mark.parametrize("presented", ["dash.wrong-secret", "nobody.whatever", "no-dot-at-all", "."])
async def test_wrong_or_unknown_keys_are_401(keys, presented, monkeypatch):
    app = gateway_app(monkeypatch, SERVICE_API_KEYS=keys["viewer"][1])
    async with client_for(app) as client:
        answer = await client.get("/api/v1/auth/whoami", headers={"X-API-Key": presented})
    assert answer.status_code == 401
    assert app.state.parts.state["audit"].records[0].detail["why"] == "bad_api_key"


def test_only_hashes_are_stored_and_bad_files_stop_the_start(monkeypatch):
    with pytest.raises(SettingsError, match=r"SERVICE_API_KEYS: SERVICE_API_KEYS line 2: ops: not an argon2 hash"):
        gateway_app(monkeypatch, SERVICE_API_KEYS="# keys\nops admin ops.plaintext-secret")
    with pytest.raises(SettingsError, match=r"line 1: unknown role 'root'"):
        gateway_app(monkeypatch, SERVICE_API_KEYS=f"ops root {CHEAP.hash('x')}")
    with pytest.raises(SettingsError, match=r"SERVICE_BOOTSTRAP_ADMIN: expected one line"):
        gateway_app(monkeypatch, SERVICE_BOOTSTRAP_ADMIN="admin")
    with pytest.raises(SettingsError, match=r"SERVICE_OIDC_ALGORITHMS: must be a non-empty subset"):
        gateway_app(monkeypatch, SERVICE_OIDC_ALGORITHMS='["RS256", "HS256"]')
    with pytest.raises(SettingsError, match=r"SERVICE_OIDC_ISSUER: needs SERVICE_OIDC_AUDIENCE"):
        gateway_app(monkeypatch, SERVICE_OIDC_ISSUER="https://idp.example")


def test_a_stored_hash_verifies_only_its_own_key():
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    line = f"ops admin,viewer {hasher.hash('ops.s3cret')}"
    [entry] = parse_key_file(line)
    assert entry.roles == {Role.ADMIN, Role.VIEWER}
    store = ApiKeys([entry], hasher)
    assert store.verify("ops.s3cret") is not None
    assert store.verify("ops.s3cret ") is None and store.verify("ops.S3cret") is None
    with pytest.raises(ApiKeyError, match="appears twice"):
        parse_key_file(f"{line}\n{line}")


async def test_rate_limits_answer_429_with_retry_after(keys, monkeypatch):
    app = gateway_app(monkeypatch, SERVICE_API_KEYS=keys["viewer"][1],
                      SERVICE_RATE_LIMIT='{"principal_rps": 0.5, "principal_burst": 2}')
    headers = {"X-API-Key": keys["viewer"][0]}
    async with client_for(app) as client:
        codes = [(await client.get("/api/v1/auth/whoami", headers=headers)).status_code for _ in range(2)]
        refused = await client.get("/api/v1/auth/whoami", headers=headers)
        healthz = await client.get("/healthz")
    assert codes == [200, 200] and refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 2  # one token back at 0.5/s: within 2 s
    assert healthz.status_code == 200


async def test_the_source_limit_applies_before_authentication(monkeypatch):
    app = gateway_app(monkeypatch, SERVICE_RATE_LIMIT='{"source_rps": 1, "source_burst": 3}')
    async with client_for(app) as client:
        codes = [(await client.get("/api/v1/auth/whoami")).status_code for _ in range(4)]
        last = await client.get("/api/v1/auth/whoami")
        metrics = (await client.get("/metrics")).text
    assert codes == [401, 401, 401, 429] and last.headers["retry-after"] == "1"
    # refused before routing, still counted under its route template
    assert 'route="/api/v1/auth/whoami",service="gui-gateway",status="429"} 2.0' in metrics
    assert last.headers["x-content-type-options"] == "nosniff"


def test_token_buckets_refill_at_their_rate():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.acquire("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a", 0.0) == pytest.approx(0.5)  # one token every 0.5 s
    assert limiter.acquire("b", 0.0) == 0.0  # keys are independent
    assert limiter.acquire("a", 0.5) == 0.0 and limiter.acquire("a", 0.5) == pytest.approx(0.5)


async def test_body_limit_security_headers_and_cors(keys, monkeypatch):
    app = gateway_app(monkeypatch, SERVICE_API_KEYS=keys["admin"][1], SERVICE_MAX_BODY_BYTES="1024")
    headers = {"X-API-Key": keys["admin"][0], "Origin": "https://evil.example"}
    async with client_for(app) as client:
        big = await client.post("/api/v1/trading/pause", json={"reason": "x" * 2000}, headers=headers)
        ok = await client.get("/api/v1/auth/whoami", headers=headers)
        preflight = await client.options("/api/v1/auth/whoami", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert big.status_code == 413 and "1024" in big.json()["detail"]
    assert ok.status_code == 200 and "access-control-allow-origin" not in ok.headers
    assert "access-control-allow-origin" not in preflight.headers
    for name, value in {"x-frame-options": "DENY", "x-content-type-options": "nosniff",
                        "referrer-policy": "no-referrer", "cache-control": "no-store"}.items():
        assert ok.headers[name] == value and big.headers[name] == value
    assert "frame-ancestors 'none'" in ok.headers["content-security-policy"]


async def test_cors_answers_only_the_configured_origins(monkeypatch):
    app = gateway_app(monkeypatch, SERVICE_CORS_ORIGINS='["https://desk.example"]')
    async with client_for(app) as client:
        allowed = await client.options("/api/v1/auth/whoami", headers={
            "Origin": "https://desk.example", "Access-Control-Request-Method": "GET"})
        other = await client.options("/api/v1/auth/whoami", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://desk.example"
    assert "access-control-allow-origin" not in other.headers


def test_a_chunked_body_over_the_limit_is_413_and_the_gateway_goes_on(keys, monkeypatch):
    import httpx

    from service.asgi import served

    app = gateway_app(monkeypatch, SERVICE_API_KEYS=keys["admin"][1], SERVICE_MAX_BODY_BYTES="1024")
    headers = {"X-API-Key": keys["admin"][0], "Content-Type": "application/json"}

    def chunks():  # no Content-Length: the body is counted as it arrives
        yield b'{"reason": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    with served(app) as url:
        big = httpx.post(f"{url}/api/v1/trading/pause", content=chunks(), headers=headers)
        after = httpx.post(f"{url}/api/v1/trading/pause", json={"reason": "still serving"}, headers=headers)
    assert big.status_code == 413 and big.json() == {"detail": "request body over 1024 bytes"}
    assert after.status_code == 200 and after.json()["result"] == "ok"
    assert [r.reason for r in app.state.parts.state["audit"].records] == ["still serving"]
