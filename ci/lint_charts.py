"""`helm lint --strict` of every chart with each of its profiles, through the embedded Helm engine."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import helm_python

from eafix.platform.profiles import profiles
from eafix.platform.render import load_values, offline_copy

CHARTS = ("eafix-trading", "eafix-infra", "eafix-apps")


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
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
