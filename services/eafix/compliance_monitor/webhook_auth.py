"""Webhook authentication: Alertmanager sends the shared secret as `Authorization: Bearer <secret>`
(it cannot sign); other senders may sign the body instead, `X-Alertmanager-Signature: sha256=<hex>`
(HMAC-SHA256 of the raw body with the same secret). Both compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum

SIGNATURE_HEADER = "x-alertmanager-signature"


class Rejection(StrEnum):
    MISSING = "missing_credentials"
    BAD_TOKEN = "bad_token"
    BAD_SIGNATURE = "bad_signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check(secret: str, headers: Mapping[str, str], body: bytes) -> Rejection | None:
    """None when the request carries a valid bearer token or body signature, else why not."""
    auth = headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret.encode())
        return None if ok else Rejection.BAD_TOKEN
    signature = headers.get(SIGNATURE_HEADER, "")
    if signature:
        return None if hmac.compare_digest(signature.strip().encode(), sign(secret, body).encode()) \
            else Rejection.BAD_SIGNATURE
    return Rejection.MISSING
