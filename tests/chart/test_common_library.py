"""The eafix-common library chart: how it reaches the three charts (one copy, a symlink in each
chart's charts/), that `helm package` and `helm dependency build` take it, its helpers on their own
(label values, the precedence rule) and the `extraObjects` escape hatch it renders in every chart.
"""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path

import helm_python
import pytest
import yaml

from conftest import CHARTS, TRADING
from eafix.platform.render import RenderError, render

LIBRARY = CHARTS / "eafix-common"
USERS = ("eafix-trading", "eafix-infra", "eafix-apps")
# Kubernetes: a label value is empty or at most 63 characters, alphanumeric at both ends, [-_.] inside
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


# --- one copy, reached by symlinks -------------------------------------------------------------------

@pytest.mark.parametrize("chart", USERS)
def test_each_chart_declares_the_library_and_reaches_it_by_symlink(chart):
    library = yaml.safe_load((LIBRARY / "Chart.yaml").read_text())
    assert library["type"] == "library"
    deps = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())["dependencies"]
    (dep,) = [d for d in deps if d["name"] == "eafix-common"]
    assert dep["version"] == library["version"]
    assert "repository" not in dep  # `helm dependency build` uses charts/eafix-common as it is
    link = CHARTS / chart / "charts" / "eafix-common"
    assert link.is_symlink() and link.resolve() == LIBRARY.resolve()


def test_the_library_templates_exist_once():
    defining = set()
    for tpl in CHARTS.rglob("*.tpl"):  # rglob does not descend into the symlinks
        if 'define "eafix-common.' in tpl.read_text():
            defining.add(tpl.parent.parent)
    assert defining == {LIBRARY}


# eafix-infra packages only after `helm dependency build` has fetched its OCI dependencies
@pytest.mark.parametrize("chart", ["eafix-trading", "eafix-apps"])
def test_helm_package_embeds_the_library_and_the_package_renders_alike(chart, tmp_path):
    archive = Path(helm_python.package(CHARTS / chart, destination=tmp_path))
    with tarfile.open(archive) as tar:
        member = tar.getmember(f"{chart}/charts/eafix-common/templates/_labels.tpl")
        assert member.isfile()  # the content, not a link
    assert render(archive).manifests == render(CHARTS / chart).manifests


def test_dependency_build_keeps_the_symlink_and_needs_no_network(tmp_path):
    for name in ("eafix-apps", "eafix-common"):
        shutil.copytree(CHARTS / name, tmp_path / name, symlinks=True)
    helm_python.dependency_build(tmp_path / "eafix-apps")
    charts_dir = tmp_path / "eafix-apps" / "charts"
    assert sorted(p.name for p in charts_dir.iterdir()) == ["eafix-common"]  # no archive next to it
    assert (charts_dir / "eafix-common").is_symlink()
    lock = yaml.safe_load((tmp_path / "eafix-apps" / "Chart.lock").read_text())
    assert [(d["name"], d["repository"]) for d in lock["dependencies"]] == [("eafix-common", "")]
    assert render(tmp_path / "eafix-apps").select(kind="Application")


# --- the helpers on their own, through a probe chart ---------------------------------------------------

PROBE = """\
{{- $labels := dict -}}
{{- range $k, $v := .Values.labelValues }}{{ $_ := set $labels $k (include "eafix-common.labels.value" $v) }}{{ end -}}
{{- $picks := dict -}}
{{- range $k, $c := .Values.picks }}{{ $_ := set $picks $k (include "eafix-common.pick" $c | fromJson).v }}{{ end -}}
apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "eafix-common.metadata" (dict "ctx" $ "name" "probe" "app" "probe" "labels" (dict "tier" "own")
      "annotations" (dict "owner" "object")) | nindent 2 }}
data:
  labels: {{ toJson $labels | quote }}
  picks: {{ toJson $picks | quote }}
"""


@pytest.fixture(scope="module")
def probe_chart(tmp_path_factory) -> Path:
    chart = tmp_path_factory.mktemp("probe") / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "charts").mkdir()
    (chart / "charts" / "eafix-common").symlink_to(LIBRARY.resolve())
    (chart / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "probe", "version": "1.2.3", "appVersion": "1.0.0+build.7",
        "dependencies": [{"name": "eafix-common", "version": "0.1.0"}]}))
    (chart / "templates" / "probe.yaml").write_text(PROBE)
    return chart


LABEL_CASES = {
    "semver-build": ("0.1.0+build.5", "0.1.0_build.5"),
    "too-long": ("a" * 70, "a" * 63),
    "cut-on-a-dash": ("x" * 62 + "-yz", "x" * 62),
    "dashes-at-the-ends": ("-release-", "release"),
    "spaces-and-punctuation": ("Trading Platform!", "Trading_Platform"),
    "number": (1.5, "1.5"),
    "boolean": (True, "true"),
    "empty": ("", ""),
}


def test_label_values_are_cleaned_into_valid_label_values(probe_chart):
    values = {"labelValues": {k: v for k, (v, _) in LABEL_CASES.items()}}
    cm = render(probe_chart, values=values).one("ConfigMap", "probe")
    cleaned = yaml.safe_load(cm["data"]["labels"])
    assert cleaned == {k: want for k, (_, want) in LABEL_CASES.items()}
    assert all(len(v) <= 63 and LABEL_VALUE.match(v) for v in cleaned.values())


def test_metadata_labels_and_annotations_in_their_order(probe_chart):
    cm = render(probe_chart, values={
        "global": {"commonLabels": {"team": "global", "scope": "global"}, "commonAnnotations": {"owner": "global"}},
        "commonLabels": {"scope": "chart", "app.kubernetes.io/name": "hijack"},
        "commonAnnotations": {"owner": "chart", "note": "chart"}}, release="blue").one("ConfigMap", "probe")
    labels = cm["metadata"]["labels"]
    assert (labels["team"], labels["scope"], labels["tier"]) == ("global", "chart", "own")
    assert labels["app.kubernetes.io/name"] == "probe"  # a common label never moves a selector label
    assert labels["app.kubernetes.io/instance"] == "blue"
    assert labels["app.kubernetes.io/version"] == "1.0.0_build.7"  # appVersion cleaned
    assert labels["helm.sh/chart"] == "probe-1.2.3"
    assert cm["metadata"]["annotations"] == {"owner": "object", "note": "chart"}  # the object's own win


PICK_CASES = {
    "local-string": (["l", "g", "d"], "l"),
    "empty-string-inherits": (["", "g", "d"], "g"),
    "down-to-the-default": (["", "", "d"], "d"),
    "empty-list-clears": ([[], ["g"]], []),
    "null-list-inherits": ([None, ["g"]], ["g"]),
    "empty-map-clears": ([{}, {"a": "1"}], {}),
    "nothing-set": ([None, None], None),
}


def test_one_precedence_rule_local_global_default(probe_chart):
    values = {"picks": {k: candidates for k, (candidates, _) in PICK_CASES.items()}}
    picks = yaml.safe_load(render(probe_chart, values=values).one("ConfigMap", "probe")["data"]["picks"])
    assert picks == {k: want for k, (_, want) in PICK_CASES.items()}


# --- extraObjects ------------------------------------------------------------------------------------

EXTRA_MAP = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "{{ .Release.Name }}-extra", "namespace": "{{ .Release.Namespace }}"},
             "data": {"chart": "{{ .Chart.Name }}"}}


@pytest.mark.parametrize("chart", USERS)
def test_extra_objects_are_rendered_through_tpl(chart):
    text_item = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ printf \"%s-robot\" .Release.Name }}\n"
    r = render(CHARTS / chart, values={"extraObjects": [EXTRA_MAP, text_item]}, release="blue", namespace="ops")
    cm = r.one("ConfigMap", "blue-extra")
    assert (cm["metadata"]["namespace"], cm["data"]["chart"]) == ("ops", chart)
    assert r.one("ServiceAccount", "blue-robot")


def test_extra_objects_can_use_the_charts_named_templates():
    item = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "reporter-note"},
            "data": {"url": '{{ include "eafix.serviceUrl" (dict "ctx" $ "name" "reporter") }}'}}
    r = render(TRADING, values={"extraObjects": [item]})
    assert r.one("ConfigMap", "reporter-note")["data"]["url"] == "http://reporter:8088"


@pytest.mark.parametrize("chart", USERS)
def test_an_extra_object_without_a_kind_is_refused_with_its_path(chart):
    with pytest.raises(RenderError) as err:
        render(CHARTS / chart, values={"extraObjects": [{"apiVersion": "v1", "metadata": {"name": "x"}}]})
    assert "at '/extraObjects/0': missing property 'kind'" in str(err.value)
