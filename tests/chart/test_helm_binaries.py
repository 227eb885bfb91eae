"""`helm lint --strict` with the real Helm 3 and Helm 4 over every chart x profile, and proof that it
bites: a value the schema refuses and a template that fails are both findings, for both binaries.

Without `--with-subcharts`: the umbrella's lint renders eafix-service with the umbrella's values,
which is the only way it is ever installed; standalone it has no `global` (it is an internal
`file://` dependency, not a published chart)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import ALL_PROFILES
from eafix.platform.profiles import Profile
from eafix.platform.render import load_values, offline_copy
from helm_binaries import HELMS, helm, version

CASES = [(p, h) for p in ALL_PROFILES for h in HELMS]


def lint(binary: str, chart, values: dict, tmp_path) -> subprocess.CompletedProcess:
    values_file = tmp_path / "values.json"  # JSON: read alike by every YAML parser
    values_file.write_text(json.dumps(values))
    return subprocess.run([helm(binary), "lint", "--strict", str(chart), "--namespace", "eafix-trading",
                           "--values", str(values_file)],
                          capture_output=True, text=True, check=False)


def test_the_binaries_are_the_pinned_releases():
    assert version("helm3").startswith("v3.21.")
    assert version("helm4").startswith("v4.3.")


@pytest.mark.parametrize(("profile", "binary"), CASES, ids=[f"{p.id}-{h}" for p, h in CASES])
def test_lint_strict_passes(profile: Profile, binary: str, tmp_path):
    chart = offline_copy(profile.chart_dir, tmp_path)  # eafix-infra's OCI dependencies are absent offline
    done = lint(binary, chart, load_values(profile.values_files), tmp_path)
    assert done.returncode == 0, f"{binary} lint --strict {profile.id}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("binary", HELMS)
def test_lint_refuses_a_value_the_schema_refuses(binary, tmp_path):
    chart = offline_copy(ALL_PROFILES[0].chart_dir, tmp_path)
    done = lint(binary, chart, {"risk-manager": {"replicaCount": "two"}}, tmp_path)
    assert done.returncode != 0
    assert "replicaCount" in done.stdout + done.stderr


@pytest.mark.parametrize("binary", HELMS)
def test_lint_refuses_a_template_that_fails(binary, tmp_path):
    chart = tmp_path / "eafix-trading"
    shutil.copytree(ALL_PROFILES[0].chart_dir, chart, symlinks=False)
    (chart / "templates" / "broken.yaml").write_text("kind: ConfigMap\nmetadata: {name: {{ .Values.nope.deeper }}}\n")
    done = lint(binary, chart, {}, tmp_path)
    assert done.returncode != 0
    assert "broken.yaml" in done.stdout + done.stderr
