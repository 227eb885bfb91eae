"""The real Helm 3 and Helm 4 binaries (`make tools-go` builds them from tools/helm3 and tools/helm4)."""

from __future__ import annotations

import subprocess

from eafix.platform.profiles import REPO

BIN = REPO / ".tools" / "bin"
HELMS = ("helm3", "helm4")


def helm(name: str) -> str:
    """Path of a built helm binary; a clear failure (not a skip) when it was not built."""
    path = BIN / name
    if not path.is_file():
        raise AssertionError(f"{path} is missing: run `make tools-go` (builds Helm 3 and 4 from tools/)")
    return str(path)


def version(name: str) -> str:
    return subprocess.run([helm(name), "version", "--short"], capture_output=True, text=True, check=True).stdout.strip()


__all__ = ["BIN", "HELMS", "helm", "version"]
