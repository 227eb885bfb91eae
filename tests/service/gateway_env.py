"""Building a real gui-gateway app for a test, configured through SERVICE_* variables and secret files as
in a pod, and cheap argon2 parameters for the API-key hashes the tests write (verification reads the
parameters from the hash, so the gateway's own code path is unchanged)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from eafix import services
from eafix.gui_gateway.api_keys import new_key
from eafix.gui_gateway.principals import Role
from eafix.runtime.app import create_app
from eafix.runtime.service import build_parts, settings_class

SPEC = services.BY_NAME["gui-gateway"]
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def key_pair(key_id: str, *roles: Role) -> tuple[str, str]:
    """(the key a client presents, its SERVICE_API_KEYS line)."""
    return new_key(key_id, roles, CHEAP)


def gateway_app(monkeypatch: pytest.MonkeyPatch, **env: str) -> FastAPI:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = settings_class(SPEC)(name=SPEC.name)
    return create_app(SPEC, settings, build_parts(SPEC, settings))
