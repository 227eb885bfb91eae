"""`eafix charts manifests`: every environment as plain manifests in the deployment docs' layout."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import render_profile
from eafix.platform import manifests
from eafix.platform.profiles import ENVIRONMENTS, REPO


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def env_layout(request):
    rendered = manifests.render_environment(request.param)
    return request.param, rendered, manifests.layout(rendered)


def test_every_object_lands_in_exactly_one_file(env_layout):
    env, rendered, lay = env_layout
    placed = [(path, obj) for path, obj in lay.objects()]
    identities = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for _, o in placed]
    assert len(identities) == len(set(identities))
    expected = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
                for r in rendered.values() for o in r.objects}
    assert set(identities) == expected
    for path, obj in placed:
        folder, name = path.rsplit("/", 1)
        assert folder in manifests.FOLDERS
        chart = name.removesuffix(".yaml").removesuffix("-hooks")
        assert chart in manifests.MANIFEST_CHARTS
        if obj["kind"] != "Namespace":  # the one object both charts may declare (labels merged)
            assert obj in rendered[chart].objects, f"{path} holds an object of another chart"


def test_folders_follow_the_deployment_docs(env_layout):
    env, _, lay = env_layout
    by_kind = {}
    for path, obj in lay.objects():
        by_kind.setdefault(obj["kind"], set()).add(path.rsplit("/", 1)[0])
    assert by_kind["Namespace"] == {"namespaces"}
    assert by_kind["Deployment"] == {"deployments"} and by_kind["Service"] == {"services"}
    assert by_kind["ConfigMap"] <= {"configmaps", "monitoring"}
    if env == "prod":
        assert by_kind["PrometheusRule"] == by_kind["ServiceMonitor"] == {"monitoring"}
        assert by_kind["AuthorizationPolicy"] == {"istio/authorization-policies"}
        assert by_kind["StorageClass"] == {"storage"}
        namespace = next(o for _, o in lay.objects() if o["kind"] == "Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert by_kind.get("Secret", {"secrets"}) == {"secrets"}


def test_infra_and_trading_never_share_a_file(env_layout):
    _, _, lay = env_layout
    for path, objs in lay.files.items():
        charts = {o["metadata"].get("labels", {}).get("helm.sh/chart", "").rsplit("-", 1)[0] for o in objs
                  if o["kind"] != "Namespace"}
        charts.discard("")
        assert len({c for c in charts if c in ("eafix-infra", "eafix-trading")}) <= 1, path


def test_hooks_and_helm_tests_get_their_own_files():
    lay = manifests.layout({"eafix-trading": render_profile("eafix-trading:env-prod")})
    hooks = [o for path, o in lay.objects() if path.endswith("-hooks.yaml")]
    tests = [o for path, o in lay.objects() if path.startswith("tests/")]
    assert hooks and all("helm.sh/hook" in o["metadata"]["annotations"] for o in hooks)
    assert tests and all("test" in o["metadata"]["annotations"]["helm.sh/hook"] for o in tests)


def test_unknown_kinds_and_duplicates_are_errors():
    with pytest.raises(manifests.ManifestError, match="no folder for this kind"):
        manifests.folder_of({"kind": "Widget", "metadata": {"name": "w"}})

    class R:
        def __init__(self, objects):
            self.objects = objects

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}}
    with pytest.raises(manifests.ManifestError, match="rendered by both a and b"):
        manifests.layout({"a": R([cm]), "b": R([dict(cm)])})
    ns = lambda labels: {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": labels}}  # noqa: E731
    merged = manifests.layout({"a": R([ns({"x": "1"})]), "b": R([ns({"y": "2"})])})
    assert merged.files["namespaces/a.yaml"][0]["metadata"]["labels"] == {"x": "1", "y": "2"}


def test_write_and_the_cli(tmp_path):
    out = tmp_path / "deploy" / "kubernetes"
    (out / "stale").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "eafix", "charts", "manifests", "--env", "prod", "--out", str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "stale").exists()
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.yaml")}
    assert {"namespaces/eafix-infra.yaml", "secrets/eafix-infra.yaml", "deployments/eafix-trading.yaml",
            "services/eafix-trading.yaml", "monitoring/eafix-trading.yaml",
            "istio/authorization-policies/eafix-trading.yaml"} <= written
    docs = list(yaml.safe_load_all((out / "deployments" / "eafix-trading.yaml").read_text()))
    assert {d["kind"] for d in docs} >= {"Deployment", "PodDisruptionBudget", "ServiceAccount"}
    readme = (out / "README.md").read_text()
    assert readme.index("kubectl apply -f namespaces/") < readme.index("kubectl apply -f deployments/")
    assert "dependencies redis, postgresql, kube-prometheus-stack are not fetched" in readme
    assert "not fetched" in proc.stderr


def test_fetch_dependencies_uses_the_embedded_engine(monkeypatch, tmp_path):
    import helm_python

    calls = []
    monkeypatch.setattr(helm_python, "dependency_update", lambda chart: calls.append(chart))
    assert manifests.fetch_dependencies(REPO / "charts" / "eafix-infra") is True
    assert manifests.fetch_dependencies(REPO / "charts" / "eafix-trading") is False  # nothing missing
    assert calls == [str(REPO / "charts" / "eafix-infra")]


def test_make_target_and_ignore():
    makefile = (REPO / "Makefile").read_text()
    assert "manifests:" in makefile and "eafix charts manifests --env $(ENV)" in makefile
    assert "/deploy/" in (REPO / ".gitignore").read_text()  # generated on demand, never committed
