"""The JWKS cache against a real issuer over HTTP, with a hand-driven monotonic clock: keys are reused,
refetched when stale or when a token names an unknown kid (key rotation), but an unknown kid refetches
at most once per `min_refresh`; an unreachable issuer leaves the cached keys in use."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from eafix.gui_gateway.jwks import JwksCache, parse_jwks
from eafix.gui_gateway.tokens import AuthError
from service.asgi import served
from service.oidc_issuer import Issuer, new_ec, new_rsa, public_jwk

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    issuer = Issuer(keys={"rsa-1": new_rsa()})
    with served(issuer.app()) as url:
        issuer.url = url
        yield issuer


async def test_rotation_refetch_rate_limit_and_ttl(issuer):
    clock = Clock()
    async with httpx.AsyncClient() as client:
        cache = JwksCache(client, issuer=issuer.url, ttl=300, min_refresh=30, monotonic=clock)
        assert (await cache.key("rsa-1")) is not None and issuer.jwks_requests == 1  # via discovery
        assert (await cache.key("rsa-1")) is not None and issuer.jwks_requests == 1  # cached
        for n in range(20):  # a storm of made-up kids within min_refresh: no fetch at all
            assert await cache.key(f"made-up-{n}") is None
        assert issuer.jwks_requests == 1
        issuer.keys["rsa-2"] = new_rsa()  # the IdP rotates
        clock.t += 31
        assert (await cache.key("rsa-2")) is not None and issuer.jwks_requests == 2  # unknown kid: refetched
        clock.t += 10
        assert await cache.key("still-unknown") is None and issuer.jwks_requests == 2
        clock.t += 300  # stale: the next lookup of a known key refetches too
        assert (await cache.key("rsa-1")) is not None and issuer.jwks_requests == 3


async def test_an_unreachable_issuer_keeps_the_cached_keys():
    issuer = Issuer(keys={"ec-1": new_ec()})
    clock = Clock()
    with served(issuer.app()) as url:
        issuer.url = url
        client = httpx.AsyncClient()
        cache = JwksCache(client, issuer=url, jwks_url=f"{url}/jwks", ttl=60, min_refresh=5, monotonic=clock)
        assert await cache.key("ec-1") is not None
    clock.t += 120  # stale, and the issuer is gone: the refresh fails, the key stays usable
    assert await cache.key("ec-1") is not None
    await client.aclose()


async def test_no_keys_ever_fetched_is_a_503():
    async with httpx.AsyncClient() as client:
        cache = JwksCache(client, issuer="http://127.0.0.1:9", jwks_url="http://127.0.0.1:9/jwks")
        with pytest.raises(AuthError) as refused:
            await cache.key("any")
    assert refused.value.status == 503


def test_only_asymmetric_signature_keys_are_kept():
    rsa_key, ec_key = new_rsa(), new_ec()
    document = {"keys": [
        public_jwk(rsa_key, "rsa"), public_jwk(ec_key, "ec"),
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},  # a symmetric key must never verify anything
        {**public_jwk(rsa_key, "enc"), "use": "enc"},
        {**public_jwk(rsa_key, "x"), "kid": ""},
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},
    ]}
    assert sorted(parse_jwks(document)) == ["ec", "rsa"]
