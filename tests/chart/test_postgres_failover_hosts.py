"""`global.postgres.failoverHosts`: the services and the migrations Job get libpq's multi-host URL
with `target_session_attrs=read-write`, which the services' settings accept and libpq reads as the
host list; with PostgreSQL outside the mesh every host gets its plaintext DestinationRule."""

from __future__ import annotations

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from conftest import render_profile
from eafix.platform.profiles import REPO
from eafix.platform.render import RenderError
from eafix.platform.summary import infra_budget
from eafix.runtime.settings import Settings

FAILOVER = {"global": {"postgres": {"host": "postgresql-primary", "failoverHosts": ["postgresql-read"]}}}


def _env(container: dict, name: str) -> str:
    return next(e["value"] for e in container["env"] if e["name"] == name)


def test_services_and_migrations_get_every_host_and_look_for_the_writable_one(render_with):
    r = render_with(FAILOVER)
    url = r.one("ConfigMap", "reporter-config")["data"]["SERVICE_POSTGRES_URL"]
    assert url == ("postgresql://postgresql-primary:5432,postgresql-read:5432/eafix_trading"
                   "?sslmode=prefer&target_session_attrs=read-write")
    job = r.one("Job", "eafix-migrations")["spec"]["template"]["spec"]["containers"][0]
    assert _env(job, "SERVICE_POSTGRES_URL") == url
    parsed = conninfo_to_dict(url)  # libpq's own reading of it
    assert (parsed["host"], parsed["port"], parsed["target_session_attrs"]) == (
        "postgresql-primary,postgresql-read", "5432,5432", "read-write")
    assert Settings(name="reporter", postgres_url=url).postgres_url == url


def test_one_host_renders_the_plain_url(render_with):
    url = render_with().one("ConfigMap", "reporter-config")["data"]["SERVICE_POSTGRES_URL"]
    assert url == "postgresql://postgresql:5432/eafix_trading?sslmode=prefer"


def test_outside_the_mesh_every_host_gets_a_plaintext_destination_rule(render_with):
    values = {"global": {"istio": {"enabled": True}, "postgres": FAILOVER["global"]["postgres"]},
              "istio": {"backends": {"postgresInMesh": False}, "gateway": {"host": "t.example.internal"}}}
    r = render_with(values)
    rules = {o["metadata"]["name"]: o["spec"] for o in r.select(kind="DestinationRule")}
    assert rules["eafix-postgres"]["host"] == "postgresql-primary.eafix-trading.svc.cluster.local"
    assert rules["eafix-postgres-1"] == {"host": "postgresql-read.eafix-trading.svc.cluster.local",
                                   "trafficPolicy": {"tls": {"mode": "DISABLE"}}}


@pytest.mark.parametrize("bad", [["postgresql-read:5433"], ["a", "a"], "postgresql-read"])
def test_a_bad_failover_host_list_is_refused_naming_the_path(render_with, bad):
    with pytest.raises(RenderError, match="failoverHosts"):
        render_with({"global": {"postgres": {"failoverHosts": bad}}})


def test_prod_runs_a_synchronous_replica_and_the_trading_services_find_the_writable_one():
    """values/prod: eafix-infra's PostgreSQL has a synchronous read replica on another node, the
    backup dumps the primary's Service, and eafix-trading's URL names both Bitnami Services."""
    values = yaml.safe_load((REPO / "values/prod/eafix-infra.yaml").read_text())
    pg = values["postgresql"]
    assert pg["architecture"] == "replication" and pg["replication"]["synchronousCommit"] == "on"
    assert pg["replication"]["numSynchronousReplicas"] == pg["readReplicas"]["replicaCount"] == 1
    assert pg["primary"]["podAntiAffinityPreset"] == pg["readReplicas"]["podAntiAffinityPreset"] == "hard"
    # the replica admits the services like the primary does (they connect to it as a failover host)
    assert pg["readReplicas"]["networkPolicy"]["extraIngress"] == pg["primary"]["networkPolicy"]["extraIngress"]
    assert values["backup"]["postgres"]["host"] == "postgresql-primary"  # rendered: tests/chart/test_infra.py
    budget = infra_budget({"postgresql": {"enabled": True, **pg}})
    assert budget.pods == 2 and budget.limits_cpu == 2 + 2  # primary and replica, 2 CPU each
    config = render_profile("eafix-trading:env-prod").one("ConfigMap", "risk-manager-config")
    url = config["data"]["SERVICE_POSTGRES_URL"]
    assert url == ("postgresql://postgresql-primary:5432,postgresql-read:5432/eafix_trading"
                   "?sslmode=require&target_session_attrs=read-write")
