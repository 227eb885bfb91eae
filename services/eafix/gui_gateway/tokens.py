"""Verifying an OIDC bearer JWT (PyJWT) against keys looked up by `kid`. Pure but for the key lookup,
which is a port (the JWKS cache, jwks.py).

Only asymmetric algorithms are accepted (RS256, ES256 by default): `alg: none` and every HS* fail
before any key is touched, so a token MACed with the issuer's public key (HS/RS confusion) is
refused; the key's own algorithm must equal the header's. Issuer, audience, `exp`, `nbf` and `iat`
are checked with a leeway for clock skew; `exp` is required."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import jwt
from jwt import PyJWK

from eafix.gui_gateway.principals import Principal, roles_from_claim

ASYMMETRIC = frozenset({"RS256", "ES256"})


class AuthError(Exception):
    """Authentication or authorization refused: `status` 401/403 (503: the IdP's keys unavailable),
    `reason` a short stable code (audited, counted), `detail` what the caller is told."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    algorithms: frozenset[str] = ASYMMETRIC
    leeway: float = 30.0  # seconds of clock skew tolerated on exp/nbf/iat
    roles_claim: str = "roles"  # dotted path, e.g. realm_access.roles (Keycloak)
    name_claim: str = "sub"

    def __post_init__(self) -> None:
        if not self.algorithms or not self.algorithms <= ASYMMETRIC:
            raise ValueError(f"algorithms must be a subset of {sorted(ASYMMETRIC)}")


KeyLookup = Callable[[str], Awaitable[PyJWK | None]]


async def verify_token(token: str, config: OidcConfig, lookup: KeyLookup) -> Principal:
    """The principal of a valid token; AuthError(401) naming what is wrong otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise AuthError(401, "malformed_token", f"malformed token: {exc}") from None
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in config.algorithms:  # a list is not hashable: never ask the set
        raise AuthError(401, "algorithm_refused",
                        f"token algorithm {alg!r} not accepted (accepted: {', '.join(sorted(config.algorithms))})")
    if not isinstance(kid, str) or not kid:
        raise AuthError(401, "no_kid", "token header has no kid")
    key = await lookup(kid)
    if key is None:
        raise AuthError(401, "unknown_kid", f"no key {kid!r} in the issuer's JWKS")
    if key.algorithm_name != alg:
        raise AuthError(401, "key_algorithm_mismatch", f"key {kid!r} is for {key.algorithm_name}, token says {alg}")
    try:
        claims = jwt.decode(token, key=key.key, algorithms=[alg], audience=config.audience, issuer=config.issuer,
                            leeway=config.leeway, options={"require": ["exp", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "expired", "token expired") from None
    except jwt.ImmatureSignatureError:
        raise AuthError(401, "not_yet_valid", "token not yet valid (nbf/iat in the future)") from None
    except jwt.InvalidIssuerError:
        raise AuthError(401, "wrong_issuer", "token issuer is not the configured issuer") from None
    except jwt.InvalidAudienceError:
        raise AuthError(401, "wrong_audience", "token audience does not include this API") from None
    except jwt.InvalidSignatureError:
        raise AuthError(401, "bad_signature", "token signature does not verify") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(401, "invalid_token", f"invalid token: {exc}") from None
    name = claims.get(config.name_claim)
    if not isinstance(name, str) or not name:
        raise AuthError(401, "no_subject", f"token has no {config.name_claim!r} claim")
    return Principal(name, roles_from_claim(claims, config.roles_claim), "oidc")
