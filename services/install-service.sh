#!/usr/bin/env sh
# Installs what one service's image holds into a virtualenv: the locked requirements every service
# shares plus the extra named after the service when pyproject.toml declares one (hashes checked,
# from uv.lock), then the eafix project without dependencies. Run from the repository root.
# The Dockerfile runs it; tests/service/test_packaging.py runs it into a fresh virtualenv.
#
#   services/install-service.sh SERVICE VENV      (uv: $UV, else `uv` on PATH)
set -eu
service=$1
venv=$2
uv=${UV:-uv}
extra=$("$venv/bin/python" -c '
import sys, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"].get("optional-dependencies", {})
print(f"--extra={sys.argv[1]}" if sys.argv[1] in extras else "")' "$service")
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
"$uv" export --quiet --frozen --no-dev --no-emit-project $extra -o "$requirements"
"$venv/bin/python" -m pip install --quiet --require-hashes -r "$requirements"
"$venv/bin/python" -m pip install --quiet --no-deps .
