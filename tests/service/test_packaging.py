"""Locked environments and slim images: uv.lock matches pyproject.toml (a stale lock fails), each
service image holds only what that service needs (no dataframe, TA, chart, plotting or test packages
except indicator-engine's and reporter's polars, reporter's plotly, gui-gateway's PyJWT, cryptography
and argon2; matplotlib, the backtest's PNG, never), and the checkov tool environment is pinned with
hashes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker

from eafix import services

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".tools" / "uv" / "bin" / "uv"
NEVER_IN_AN_IMAGE = {"numpy", "ta-lib", "helm-python-sdk", "kubernetes-validate", "jsonschema", "pytest", "mypy",
                     "ruff", "checkov", "matplotlib"}
ONLY_IN = {"polars": {"indicator-engine", "reporter"}, "plotly": {"reporter"}, "pyjwt": {"gui-gateway"},
           "argon2-cffi": {"gui-gateway"}, "cryptography": {"gui-gateway"}}


def uv(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    assert UV.exists(), f"{UV} is missing: `make venv` bootstraps it"
    return subprocess.run([str(UV), *args], cwd=cwd, capture_output=True, text=True)


def image_packages(service: str, *, here: bool = False) -> set[str]:
    """The distributions services/install-service.sh installs for `service`, from the lock (`here`:
    only those whose environment markers hold on this machine, as pip decides)."""
    extras = ["--extra", service] if service in _extras() else []
    done = uv("export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", *extras)
    assert done.returncode == 0, done.stderr
    found = set()
    for line in done.stdout.splitlines():
        requirement, _, marker = line.partition(";")
        if "==" in requirement and (not here or not marker.strip() or Marker(marker.strip()).evaluate()):
            found.add(requirement.split("==")[0].strip().lower())
    return found


def _extras() -> set[str]:
    import tomllib

    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_the_lock_matches_pyproject():
    done = uv("lock", "--check", "--offline")
    assert done.returncode == 0, done.stderr


def test_a_stale_lock_fails_the_check(tmp_path):
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "services" / "eafix").mkdir(parents=True)
    (tmp_path / "services" / "eafix" / "__init__.py").write_text("")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('  "pyyaml>=6.0",\n', ""))  # a dependency dropped
    # not --offline: re-resolving needs the index's metadata, which a fresh machine's uv cache lacks
    # (installing from the lock never fetches it); `make lint` checks online as well
    done = uv("lock", "--check", cwd=tmp_path)
    assert done.returncode != 0 and "needs to be updated" in done.stderr


@pytest.mark.parametrize("service", services.NAMES)
def test_an_image_holds_only_what_its_service_needs(service):
    packages = image_packages(service)
    assert {"fastapi", "pydantic", "redis", "psycopg"} <= packages  # the export is real
    assert packages & NEVER_IN_AN_IMAGE == set()
    for package, owners in ONLY_IN.items():
        assert (package in packages) == (service in owners), package


def test_the_install_script_installs_exactly_the_locked_packages(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(["services/install-service.sh", "risk-manager", str(venv)], cwd=REPO, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "UV": str(UV)})
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout
    installed = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in listed.splitlines()}
    expected = {re.sub(r"[-_.]+", "-", p) for p in image_packages("risk-manager", here=True)}
    assert installed - {"pip", "setuptools"} == expected | {"eafix"}
    served = subprocess.run([str(venv / "bin" / "eafix"), "openapi", "risk-manager"], capture_output=True, text=True)
    assert served.returncode == 0 and '"/api/v1/position-size"' in served.stdout


def test_checkov_is_pinned_with_hashes():
    wanted = (REPO / "ci" / "checkov" / "requirements.in").read_text().split()
    locked = (REPO / "ci" / "checkov" / "requirements.txt").read_text()
    assert wanted == ["checkov==3.3.30"]
    assert re.search(r"^checkov==3\.3\.30 \\\n +--hash=sha256:[0-9a-f]{64}", locked, re.M)
    assert all("--hash=sha256:" in block for block in re.split(r"\n(?=\S)", locked) if "==" in block)
