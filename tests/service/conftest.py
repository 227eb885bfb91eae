"""Fixtures of the service tests: a clean SERVICE_* environment, secret files, real servers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service import servers


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SERVICE_* / EAFIX_SERVICE from the caller's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("SERVICE_") or key == "EAFIX_SERVICE":
            monkeypatch.delenv(key)


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """`write(SERVICE_X="value", ...)` creates files the way the chart mounts Secrets (with the
    trailing newline `kubectl create secret --from-file` keeps) and points SERVICE_SECRETS_DIR at them."""
    directory = tmp_path / "secrets"
    directory.mkdir()
    monkeypatch.setenv("SERVICE_SECRETS_DIR", str(directory))

    def write(**files: str) -> Path:
        for name, value in files.items():
            (directory / name).write_text(value + "\n")
        return directory

    return write


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.RedisServer]:
    if os.environ.get("EAFIX_TEST_REDIS_URL"):
        yield servers.external_redis(os.environ["EAFIX_TEST_REDIS_URL"])
        return
    with servers.redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[servers.PostgresServer]:
    if os.environ.get("EAFIX_TEST_POSTGRES_URL"):
        yield servers.external_postgres(os.environ["EAFIX_TEST_POSTGRES_URL"])
        return
    with servers.postgres_server() as server:
        yield server
