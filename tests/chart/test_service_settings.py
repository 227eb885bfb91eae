"""Every setting a service needs reaches it: for every eafix-trading profile, each Deployment's
environment is assembled as the kubelet would (its ConfigMaps through envFrom and env, its secret
files in the projected volume, its config files), and the service's own settings model loads it and
its `build()` assembles the service (no I/O), exactly as `eafix serve` would at start. A setting the
chart forgets, misnames or renders in a shape the model refuses fails here with the model's message.

Secret values are not in the chart (existingSecret): each mounted secret file gets a placeholder
of the shape its setting takes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import PROFILE_IDS, render_profile
from eafix import services
from eafix.runtime.service import build_parts, settings_class
from eafix.runtime.settings import load_settings

FILES_DIR = "/etc/eafix/files/"
# secret settings whose value must have a shape: name -> value (gui-gateway's key files hold
# `<id> [<roles>] <argon2 hash>` lines; the hash is only parsed at start, verified per request)
FAKE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$cGxhY2Vob2xkZXI$cGxhY2Vob2xkZXJwbGFjZWhvbGRlcg"
PLACEHOLDERS: dict[str, str] = {"SERVICE_API_KEYS": f"compliance admin {FAKE_HASH}",
                                "SERVICE_BOOTSTRAP_ADMIN": f"first-admin {FAKE_HASH}"}


def environment(r, deployment: dict, secrets_dir: Path, files_dir: Path) -> dict[str, str]:
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]
        found = r.select(kind="ConfigMap", name=ref["name"])
        assert found or ref.get("optional"), f"{ref['name']}: envFrom names a ConfigMap the chart does not render"
        env.update(found[0]["data"] if found else {})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    for volume in spec.get("volumes", []):
        for source in volume.get("projected", {}).get("sources", []):
            for item in source.get("secret", {}).get("items", []):
                (secrets_dir / item["path"]).write_text(PLACEHOLDERS.get(item["path"], "placeholder-value"))
        if "configMap" in volume:
            for key, text in r.one("ConfigMap", volume["configMap"]["name"])["data"].items():
                (files_dir / key).write_text(text)
    return {k: str(files_dir / v.removeprefix(FILES_DIR)) if v.startswith(FILES_DIR) else v for k, v in env.items()}


def start_each_service(r, tmp_path: Path, monkeypatch) -> list[str]:
    """Load every Deployment's settings and build its service; the names, or AssertionError naming
    the service and the model's complaint."""
    started = []
    for deployment in r.select(kind="Deployment"):
        name = deployment["metadata"]["labels"]["app.kubernetes.io/name"]
        spec = services.get(name)
        secrets_dir, files_dir = tmp_path / name / "secrets", tmp_path / name / "files"
        secrets_dir.mkdir(parents=True)
        files_dir.mkdir()
        env = environment(r, deployment, secrets_dir, files_dir)
        for key in [k for k in os.environ if k.startswith("SERVICE_")]:
            monkeypatch.delenv(key)
        for key, value in {**env, "SERVICE_SECRETS_DIR": str(secrets_dir)}.items():
            monkeypatch.setenv(key, value)
        try:
            settings = load_settings(spec, settings_class(spec))
            build_parts(spec, settings)
        except Exception as exc:
            raise AssertionError(f"{name}: {exc}") from None
        assert settings.port == int(env["SERVICE_PORT"])
        started.append(name)
    return started


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_each_deployment_gives_its_service_every_setting_it_needs(profile_id, tmp_path, monkeypatch):
    r = render_profile(profile_id)
    assert start_each_service(r, tmp_path, monkeypatch) == [
        d["metadata"]["labels"]["app.kubernetes.io/name"] for d in r.select(kind="Deployment")]


def test_a_setting_the_model_refuses_fails_naming_it(render_with, tmp_path, monkeypatch):
    r = render_with({"calendar-ingestor": {"config": {"windows": {"HIGH": [60, 30], "SEVERE": [90, 60]}}}})
    with pytest.raises(AssertionError, match="calendar-ingestor: SERVICE_WINDOWS: .*'HIGH', 'MEDIUM' or 'LOW'"):
        start_each_service(r, tmp_path, monkeypatch)


def test_replicated_publishes_reach_every_bus_user(render_with, tmp_path, monkeypatch):
    r = render_with({"global": {"redis": {"replication": {"replicas": 1, "waitMs": 250}}}})
    configs = {cm["metadata"]["name"]: cm["data"] for cm in r.select(kind="ConfigMap")
               if cm["metadata"]["name"].endswith("-config")}
    assert {name: data.get("SERVICE_BUS_REPLICATION") for name, data in configs.items()} == {
        name: '{"replicas":1,"wait_ms":250}' for name in configs}  # every service uses the bus
    assert len(start_each_service(r, tmp_path, monkeypatch)) == len(configs)
