"""eafix-apps: the Argo CD AppProject and Applications of each environment, and the root app in docs/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import CHARTS, render_profile
from eafix.platform import custom_resources
from eafix.platform.policy import format_table, run_all
from eafix.platform.profiles import ENVIRONMENTS, REPO, profiles
from eafix.platform.render import RenderError, render

APPS = CHARTS / "eafix-apps"
APP_PROFILES = [p.id for p in profiles("eafix-apps")]


def apps(env: str) -> dict[str, dict]:
    r = render_profile(f"eafix-apps:env-{env}")
    return {a["metadata"]["name"]: a for a in r.select(kind="Application")}


def resolve(app: dict) -> tuple[Path, list[Path]]:
    """The chart directory and the values files an Application makes Argo CD read, in the repository."""
    source = app["spec"]["source"]
    chart = (REPO / source["path"]).resolve()
    return chart, [(chart / f).resolve() for f in source["helm"]["valueFiles"]]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_applications_point_at_charts_and_value_files_that_exist(env):
    found = apps(env)
    assert set(found) == {f"eafix-infra-{env}", f"eafix-trading-{env}"}
    for name, app in found.items():
        chart, files = resolve(app)
        assert (chart / "Chart.yaml").is_file(), name
        assert chart.is_relative_to(REPO)
        assert files and all(f.is_file() and f.is_relative_to(REPO) for f in files), (name, files)
        assert files == [REPO / "values" / env / f"{chart.name}.yaml"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_waves_finalizer_and_sync_options(env):
    found = apps(env)
    infra, trading = found[f"eafix-infra-{env}"], found[f"eafix-trading-{env}"]
    wave = lambda a: int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])  # noqa: E731
    assert (wave(infra), wave(trading)) == (0, 1)
    for app in found.values():
        assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
        assert app["metadata"]["namespace"] == "argocd"
        options = app["spec"]["syncPolicy"]["syncOptions"]
        assert "ServerSideApply=true" in options and "CreateNamespace=true" in options
        labels = app["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert app["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "eafix-trading"}
        assert app["spec"]["project"] == "eafix"
    # the release names the other charts and docs rely on (Bitnami pods carry instance=eafix-infra)
    assert infra["spec"]["source"]["helm"]["releaseName"] == "eafix-infra"
    assert trading["spec"]["source"]["helm"]["releaseName"] == "eafix"


def test_prune_and_self_heal_are_configurable():
    assert apps("dev")["eafix-trading-dev"]["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert apps("prod")["eafix-trading-prod"]["spec"]["syncPolicy"]["automated"] == {"prune": False, "selfHeal": True}
    manual = render_profile("eafix-apps:ci-minimal").one("Application")
    assert "automated" not in manual["spec"]["syncPolicy"]


def test_an_overlay_disables_one_application_and_uses_an_existing_project():
    r = render_profile("eafix-apps:ci-minimal")
    assert [a["metadata"]["name"] for a in r.select(kind="Application")] == ["eafix-trading-staging"]
    assert not r.select(kind="AppProject")
    assert r.one("Application")["spec"]["project"] == "platform"


def test_project_restricts_sources_destinations_and_cluster_kinds():
    project = render_profile("eafix-apps:env-prod").one("AppProject", "eafix")
    spec = project["spec"]
    app_repos = {a["spec"]["source"]["repoURL"] for a in apps("prod").values()}
    assert app_repos <= set(spec["sourceRepos"]) and "*" not in spec["sourceRepos"]
    assert spec["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": "eafix-trading"}]
    assert {(k["group"], k["kind"]) for k in spec["clusterResourceWhitelist"]} == {
        ("", "Namespace"), ("storage.k8s.io", "StorageClass")}
    infra_chart = yaml.safe_load((CHARTS / "eafix-infra" / "Chart.yaml").read_text())
    # the library (eafix-common) has no repository: it is in the chart's charts/ directory
    registries = {d["repository"].removeprefix("oci://") for d in infra_chart["dependencies"] if d.get("repository")}
    assert len(registries) == 2
    assert registries <= set(spec["sourceRepos"])  # Argo CD fetches eafix-infra's dependencies from them


def test_disabling_every_application_fails():
    with pytest.raises(RenderError, match="every Application is disabled"):
        off = {"enabled": False, "path": "x", "syncWave": "1", "valueFiles": []}
        render(APPS, [], {"applications": {"eafix-infra": None, "eafix-trading": off}})


def test_schema_rejects_an_unknown_environment_and_typos():
    with pytest.raises(RenderError, match="/environment"):
        render(APPS, [], {"environment": "qa"})
    with pytest.raises(RenderError, match="additional properties 'syncwave'"):
        render(APPS, [], {"applications": {"eafix-infra": {"syncwave": "0"}}})


@pytest.mark.parametrize("profile_id", APP_PROFILES)
def test_policy(profile_id):
    r = render_profile(profile_id)
    findings = run_all(r.objects, kubernetes_versions=[f"1.{minor}" for minor in range(29, 38)])
    assert not findings, format_table(findings)


def test_the_shape_check_catches_a_broken_application():
    app = dict(apps("dev")["eafix-infra-dev"])
    broken = {**app, "spec": {k: v for k, v in app["spec"].items() if k != "destination"}}
    assert any("destination" in f.message for f in custom_resources.check([broken]))


def test_root_application_renders_this_chart_with_an_existing_overlay():
    root = yaml.safe_load((REPO / "docs" / "argocd-root-app.yaml").read_text())
    assert not custom_resources.check([root])
    chart, files = resolve(root)
    assert chart == APPS and all(f.is_file() for f in files)
    assert root["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    values = yaml.safe_load((APPS / "values.yaml").read_text())
    assert root["spec"]["source"]["repoURL"] == values["repo"]["url"]


def test_health_check_of_child_applications_is_documented():
    doc = yaml.safe_load((REPO / "docs" / "argocd-cm-health.yaml").read_text())
    lua = doc["data"]["resource.customizations.health.argoproj.io_Application"]
    assert "obj.status.health.status" in lua and "Progressing" in lua and "return" in lua
    assert "argocd-cm-health.yaml" in (REPO / "docs" / "operations.md").read_text()
