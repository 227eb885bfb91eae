"""schemathesis against the OpenAPI document of every one of the ten services, running as `eafix up` runs
them (processes on throwaway Redis and PostgreSQL, the replayed feed flowing): for every operation,
generated requests (valid ones and ones that break the schema) never get a 5xx, and every response
the document describes matches its schema.

gui-gateway is called with the admin API key `eafix up` generated (so its controls really pause, resume
and flatten the platform under the fuzz); the other services with the identity headers gui-gateway
forwards (their routes are reachable only from it, see test_route_auth.py). Examples per operation are
bounded and derandomised, so the run is the same every time."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from eafix import services
from service.up_process import platform_up

EXAMPLES = 12  # per operation; ~100 operations over ten services
FORWARDED = {"X-Eafix-Principal": "apikey:schemathesis", "X-Eafix-Roles": "admin"}
CHECKS = [schemathesis.checks.not_a_server_error, response_schema_conformance]


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str]) -> set[int]:
    """The statuses the operation answered with; raises what schemathesis found."""
    statuses: set[int] = set()

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
        statuses.add(response.status_code)

    run()
    return statuses


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with platform_up(tmp_path_factory.mktemp("fuzz"), speed=10, bars=3000) as up:
        yield up


@pytest.mark.parametrize("name", [s.name for s in services.SERVICES])
def test_every_operation_answers_without_5xx_and_as_documented(platform, name):
    base = platform.services[name]
    headers = {"X-API-Key": platform.key} if name == "gui-gateway" else FORWARDED
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"{name} documents no operation"
    failed, answered = {}, {}
    for operation in operations:
        try:
            answered[operation.label] = fuzz_operation(operation, base, headers)
        except Exception as exc:  # collected so one run names every failing operation, not only the first
            failed[operation.label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert not failed, "\n\n".join(f"{label}\n{text}" for label, text in failed.items())
    print(name, answered)
