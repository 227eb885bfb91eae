"""`helm lint --strict` of every chart with each of its profiles, through the embedded Helm engine."""

from __future__ import annotations

import sys

import helm_python

from eafix.platform.profiles import profiles
from eafix.platform.render import load_values


def main() -> int:
    failed = 0
    for profile in profiles("eafix-trading"):
        report = helm_python.lint(str(profile.chart_dir), load_values(profile.values_files), strict=True,
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
