"""A test OIDC issuer: RSA and EC signing keys, a discovery document and a JWKS served over real HTTP
(uvicorn on loopback), and tokens minted with PyJWT. Hostile tokens (`alg: none`, HS256 keyed with the
public key) are assembled by hand here, since PyJWT refuses to make them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

AUDIENCE = "eafix-operator-api"


def new_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issuer:
    url: str = ""  # set once served
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key (published in the JWKS)
    jwks_requests: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {"issuer": self.url, "jwks_uri": f"{self.url}/jwks"}

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            self.jwks_requests += 1
            return {"keys": [public_jwk(k, kid) for kid, k in self.keys.items()]}

        return app

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.url, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now, "exp": now + 300,
                "roles": ["viewer"]}
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def mint(self, kid: str = "rsa-1", key: Any = None, alg: str | None = None, **claims: Any) -> str:
        key = key if key is not None else self.keys[kid]
        alg = alg or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(self.claims(**claims), key, algorithm=alg, headers={"kid": kid})

    def unsigned(self, kid: str = "rsa-1", **claims: Any) -> str:
        header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
        return f"{header}.{b64(json.dumps(self.claims(**claims)).encode())}."

    def hs256_with_public_key(self, kid: str = "rsa-1", **claims: Any) -> str:
        """The HS/RS confusion attack: HMAC keyed with the issuer's public key (PEM), which anyone has."""
        pem = self.keys[kid].public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        signing_input = (f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}."
                         f"{b64(json.dumps(self.claims(**claims)).encode())}")
        signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(signature)}"
