"""schemathesis against the OpenAPI document of every one of the ten services, running as `eafix up` runs
them (processes on throwaway Redis and PostgreSQL, the replayed feed flowing): for every operation,
generated requests (valid ones and ones that break the schema) never get a 5xx, and every response
the document describes matches its schema.

gui-gateway is called with the admin API key `eafix up` generated (so its controls really pause, resume
and flatten the platform under the fuzz); the other services with the identity headers gui-gateway
forwards (their routes are reachable only from it, see test_route_auth.py), compliance-monitor's
webhook with the shared secret Alertmanager would send. Every operation must have answered at least
once past authentication (not only 401/403/429), so the fuzz reached its handler. Examples per
operation are bounded and derandomised, so the run is the same every time."""

from __future__ import annotations

import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from eafix import services
from service.up_process import Up, platform_up

EXAMPLES = 12  # per operation; ~80 operations over ten services
NOT_PAST_AUTH = {401, 403, 429}
RETRIES_AFTER_429 = 3
FORWARDED = {"X-Eafix-Principal": "apikey:schemathesis", "X-Eafix-Roles": "admin"}
CHECKS = [schemathesis.checks.not_a_server_error, response_schema_conformance]


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str]) -> set[int]:
    """The statuses the operation answered with; raises what schemathesis found."""
    statuses: set[int] = set()

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        for _ in range(RETRIES_AFTER_429):  # gui-gateway's default rate limit holds: wait as it says
            response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
            if response.status_code != 429:
                break
            time.sleep(float(response.headers["retry-after"][0]))  # schemathesis: lowercase names, lists
        statuses.add(response.status_code)

    run()
    return statuses


def headers_for(up: Up, name: str) -> dict[str, str]:
    if name == "gui-gateway":
        return {"X-API-Key": up.key}
    headers = dict(FORWARDED)
    if name == "compliance-monitor":
        secret = up.workdir / "secrets" / name / "SERVICE_ALERTMANAGER_WEBHOOK_SECRET"
        headers["Authorization"] = f"Bearer {secret.read_text().strip()}"
    return headers


def test_every_operation_of_every_service_answers_without_5xx_and_as_documented(tmp_path):
    # one platform for the ten (one test, so pytest-xdist cannot start a second `eafix up` beside it)
    failed: dict[str, str] = {}
    answered: dict[str, set[int]] = {}
    with platform_up(tmp_path, speed=10, bars=3000) as up:
        for spec in services.SERVICES:
            base = up.services[spec.name]
            schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
            operations = [result.ok() for result in schema.get_all_operations()]
            assert operations, f"{spec.name} documents no operation"
            for operation in operations:
                label = f"{spec.name}: {operation.label}"
                try:
                    answered[label] = fuzz_operation(operation, base, headers_for(up, spec.name))
                except Exception as exc:  # collected: one run names every failing operation, not only the first
                    failed[label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert not failed, "\n\n".join(f"{label}\n{text}" for label, text in failed.items())
    assert {label: codes for label, codes in answered.items() if codes <= NOT_PAST_AUTH} == {}
    assert len(answered) >= 70  # ~80 operations: a service whose document went missing shows here
