"""Cluster tests: one throwaway control plane per session (control_plane.py) and helpers to run the
real helm binary against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from control_plane import BIN, REPO, Cluster, control_plane


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with control_plane() as c:
        print(f"\ncontrol plane ready in {c.started_in:.1f} s")
        yield c


@pytest.fixture
def helm(cluster: Cluster):
    """Run the real Helm 4 against the cluster; returns the CompletedProcess (check=False)."""
    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": str(cluster.workdir / "helm"),
               "HELM_CONFIG_HOME": str(cluster.workdir / "helm"), "HELM_DATA_HOME": str(cluster.workdir / "helm")}
        return subprocess.run([str(BIN / "helm4"), *args], capture_output=True, text=True, check=False, env=env,
                              timeout=timeout)
    return run


@pytest.fixture
def eafix_status(cluster: Cluster):
    """Run `eafix status` (the CLI, in a process of its own) against a release in the cluster."""
    def run(namespace: str, *args: str, release: str = "eafix") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "eafix", "status", "--release", release, "-n", namespace, *args],
                              capture_output=True, text=True, check=False, timeout=60, cwd=REPO,
                              env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)})
    return run
