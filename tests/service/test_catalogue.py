"""The service catalogue, cross-checked against the Helm chart's values.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eafix import services

CHART_VALUES = Path(__file__).resolve().parents[2] / "charts" / "eafix-trading" / "values.yaml"


def chart_services() -> dict[str, dict]:
    values = yaml.safe_load(CHART_VALUES.read_text())
    return {k: v for k, v in values.items() if isinstance(v, dict) and "port" in v and "backends" in v}


def test_unique_services_with_unique_ports():
    assert len(set(services.NAMES)) == len(services.SERVICES) >= 10
    assert len({s.port for s in services.SERVICES}) == len(services.SERVICES)


def test_catalogue_matches_chart_values():
    chart = chart_services()
    assert sorted(chart) == sorted(services.NAMES)
    for spec in services.SERVICES:
        values = chart[spec.name]
        assert values["port"] == spec.port, spec.name
        assert values["backends"] == {"redis": spec.uses_redis, "postgres": spec.uses_postgres}, spec.name
        peers = values.get("peers") or []
        if peers == ["*"]:  # the chart's "every other service"
            peers = [n for n in services.NAMES if n != spec.name]
        assert sorted(peers) == sorted(spec.peers), spec.name


def test_peers_are_other_catalogue_services():
    for spec in services.SERVICES:
        assert spec.name not in spec.peers
        assert set(spec.peers) <= set(services.NAMES)
    gateway = services.get("gui-gateway")
    assert set(gateway.peers) == set(services.NAMES) - {"gui-gateway"}


def test_module_names_are_snake_case_identifiers():
    assert services.get("reentry-matrix-svc").module == "reentry_matrix_svc"
    assert all(s.module.isidentifier() and "-" not in s.module for s in services.SERVICES)


def test_specs_are_frozen():
    spec = services.get("reporter")
    with pytest.raises(AttributeError):
        spec.port = 1  # type: ignore[misc]


def test_unknown_service_lists_valid_names():
    with pytest.raises(services.UnknownServiceError) as err:
        services.get("risk-managr")
    message = str(err.value)
    assert "'risk-managr'" in message
    assert all(name in message for name in services.NAMES)
