"""gui-gateway's bearer-token authentication against a real issuer: its discovery document and JWKS
served over HTTP on loopback, tokens minted per case. Every hostile token is refused with 401 (403 for
a valid token whose role is too low) and written to the operator audit."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from eafix.gui_gateway.principals import Role
from service.asgi import client_for, served
from service.gateway_env import gateway_app, key_pair
from service.oidc_issuer import AUDIENCE, Issuer, new_ec, new_rsa

pytestmark = pytest.mark.anyio

@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer(keys={"rsa-1": new_rsa(), "ec-1": new_ec()})
    with served(issuer.app()) as url:
        issuer.url = url
        yield issuer


@pytest.fixture
def app(issuer, monkeypatch):
    _, admin_line = key_pair("ops", Role.ADMIN)
    return gateway_app(monkeypatch, SERVICE_OIDC_ISSUER=issuer.url, SERVICE_OIDC_AUDIENCE=AUDIENCE,
                       SERVICE_API_KEYS=admin_line)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_good_tokens_of_both_algorithms_authenticate(app, issuer):
    async with client_for(app) as client:
        for kid in ("rsa-1", "ec-1"):
            answer = await client.get("/api/v1/auth/whoami", headers=bearer(issuer.mint(kid, sub=f"user-{kid}")))
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"principal": f"user-{kid}", "roles": ["viewer"], "via": "oidc"}


def hostile(issuer: Issuer) -> dict[str, str]:
    now = int(time.time())
    stranger = new_rsa()  # a key the issuer never published
    return {
        "expired beyond the leeway": issuer.mint(exp=now - 120, iat=now - 600, nbf=now - 600),
        "not yet valid": issuer.mint(nbf=now + 600),
        "wrong issuer": issuer.mint(iss="https://evil.example"),
        "wrong audience": issuer.mint(aud="another-api"),
        "no expiry": issuer.mint(exp=None),
        "alg none": issuer.unsigned(),
        "HS256 keyed with the public key": issuer.hs256_with_public_key(),
        "unknown kid": issuer.mint("rsa-9", key=stranger),
        "known kid, foreign key": issuer.mint("rsa-1", key=stranger),
        "RS256 header on the EC key": issuer.mint("ec-1", key=stranger, alg="RS256"),
        "not a JWT": "not-a-token",
    }


# case -> the refusal reason the audit records (the gateway's stable codes, one per check)
CASES = {"expired beyond the leeway": "expired", "not yet valid": "not_yet_valid", "wrong issuer": "wrong_issuer",
         "wrong audience": "wrong_audience", "no expiry": "invalid_token", "alg none": "algorithm_refused",
         "HS256 keyed with the public key": "algorithm_refused", "unknown kid": "unknown_kid",
         "known kid, foreign key": "bad_signature", "RS256 header on the EC key": "key_algorithm_mismatch",
         "not a JWT": "malformed_token"}


@pytest.mark.parametrize("case", CASES)
async def test_hostile_tokens_are_refused_and_audited(app, issuer, case):
    token = hostile(issuer)[case]
    async with client_for(app) as client:
        answer = await client.get("/api/v1/system/status", headers=bearer(token))
        assert answer.status_code == 401, (case, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
    [record] = app.state.parts.state["audit"].records
    assert (record.action, record.result, record.actor) == ("auth-failure", "refused", "anonymous")
    assert record.detail["path"] == "/api/v1/system/status" and record.detail["why"] == CASES[case]


async def test_expiry_within_the_leeway_is_tolerated(app, issuer):
    now = int(time.time())
    async with client_for(app) as client:  # default leeway 30 s: a token 10 s past exp still passes
        answer = await client.get("/api/v1/auth/whoami", headers=bearer(issuer.mint(exp=now - 10, iat=now - 300)))
    assert answer.status_code == 200, answer.text


async def test_a_role_too_low_is_403_and_audited_with_the_principal(app, issuer):
    async with client_for(app) as client:
        viewer = bearer(issuer.mint(sub="bob"))
        assert (await client.get("/api/v1/system/status", headers=viewer)).status_code == 200
        answer = await client.post("/api/v1/trading/pause", json={"reason": "x"}, headers=viewer)
        assert answer.status_code == 403 and "needs role admin" in answer.text
        trader = bearer(issuer.mint(sub="tina", roles=["trader"]))
        assert (await client.get("/api/v1/audit", headers=trader)).status_code == 403
        nobody = bearer(issuer.mint(sub="nora", roles=["billing"]))  # an IdP group that is no role of ours
        assert (await client.get("/api/v1/auth/whoami", headers=nobody)).status_code == 403
    records = app.state.parts.state["audit"].records
    assert [(r.actor, r.action, r.result) for r in records] == [
        ("bob", "auth-failure", "refused"), ("tina", "auth-failure", "refused"), ("nora", "auth-failure", "refused")]


async def test_an_admin_token_can_pause_and_roles_come_from_the_configured_claim(issuer, monkeypatch):
    app = gateway_app(monkeypatch, SERVICE_OIDC_ISSUER=issuer.url, SERVICE_OIDC_AUDIENCE=AUDIENCE,
                      SERVICE_OIDC_ROLES_CLAIM="realm_access.roles")
    async with client_for(app) as client:
        flat = bearer(issuer.mint(sub="ann", roles=["admin"]))  # not where this deployment reads roles
        assert (await client.post("/api/v1/trading/pause", json={"reason": "drill"}, headers=flat)).status_code == 403
        nested = bearer(issuer.mint(sub="ann", roles=None, realm_access={"roles": ["offline_access", "admin"]}))
        answer = await client.post("/api/v1/trading/pause", json={"reason": "drill"}, headers=nested)
    assert answer.status_code == 200 and answer.json()["result"] == "ok"


async def test_bearer_tokens_are_refused_without_an_issuer(issuer, monkeypatch):
    app = gateway_app(monkeypatch)
    async with client_for(app) as client:
        answer = await client.get("/api/v1/auth/whoami", headers=bearer(issuer.mint()))
    assert answer.status_code == 401 and "no OIDC issuer" in answer.text
