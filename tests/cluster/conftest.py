"""Cluster tests: one throwaway control plane per session (control_plane.py) and helpers to run the
real helm binary against it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from control_plane import BIN, Cluster, control_plane


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
