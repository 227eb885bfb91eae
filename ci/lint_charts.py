"""`helm lint --strict` of every chart with each of its profiles, through the embedded Helm engine and
the real Helm 3 and Helm 4 binaries (`make tools-test` builds them into .tools/bin)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python

from eafix.platform.profiles import profiles
from eafix.platform.render import load_values, offline_copy

CHARTS = ("eafix-trading", "eafix-infra", "eafix-apps")
BINARIES = ("helm3", "helm4")
BIN = Path(__file__).resolve().parents[1] / ".tools" / "bin"


def lint_binary(binary: str, chart_dir: Path, values: dict, tmp: Path) -> list[str]:
    """Problems `helm lint --strict` reports with a real binary (empty: ok)."""
    path = BIN / binary
    if not path.is_file():
        return [f"{path} is missing: run `make tools-test`"]
    values_file = tmp / "values.json"
    values_file.write_text(json.dumps(values))
    done = subprocess.run([str(path), "lint", "--strict", str(chart_dir), "--namespace", "eafix-trading",
                           "--values", str(values_file)], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return []
    return [line for line in (done.stdout + done.stderr).splitlines() if "[ERROR]" in line or "[WARNING]" in line
            or line.startswith("Error")] or [done.stderr.strip()]


def main() -> int:
    failed = 0
    tmp = Path(tempfile.mkdtemp(prefix="eafix-lint-"))
    for profile in (p for chart in CHARTS for p in profiles(chart)):
        # eafix-infra's OCI dependencies are absent offline; lint its own templates (see render.offline_copy)
        chart_dir = offline_copy(profile.chart_dir, tmp)
        report = helm_python.lint(str(chart_dir), load_values(profile.values_files), strict=True,
                                  namespace="eafix-trading", with_subcharts=True)
        # severities: 1 info, 2 warning, 3 error; --strict fails on warnings too
        problems = [m for m in report.get("messages", []) if int(m.get("severity", 0)) >= 2]
        errors = report.get("errors") or []
        status = "ok" if not problems and not errors else "FAILED"
        print(f"helm lint --strict {profile.id}: {status}")
        for m in problems:
            print(f"  severity {m.get('severity')}: {m.get('path')}: {m.get('error')}")
        for e in errors:
            print(f"  error: {e}")
        failed += status != "ok"
        for binary in BINARIES:
            found = lint_binary(binary, chart_dir, load_values(profile.values_files), tmp)
            print(f"{binary} lint --strict {profile.id}: {'FAILED' if found else 'ok'}")
            for line in found:
                print(f"  {line}")
            failed += bool(found)
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
