#!/usr/bin/env bash
# Installs the Debian packages the tests run for real when they are missing: redis-server and
# PostgreSQL's server binaries (initdb, pg_ctl) for the throwaway servers of tests/service, and
# openssl (the keys of tests/cluster's throwaway control plane) and chromium (the browser the
# Playwright tests drive: web UI and reports); as root also iptables (the fault suite's network
# partition, tests/service/test_faults_network.py, which only root can run).
# As root it installs them with apt-get; otherwise it names the packages and fails.
# Usage: ci/ensure_packages.sh   (idempotent: does nothing when everything is present)
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ "$(id -u)" -ne 0 ] || command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing+=(iptables)

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
