#!/bin/sh
# One backup run of eafix-infra: dump KIND (postgres | redis) into $BACKUP_DIR/KIND as a
# timestamped file, written under a .partial name and renamed only when complete, then delete
# that directory's files older than RETENTION_DAYS. Credentials are files under $SECRETS_DIR,
# never environment values in the pod spec.
#   postgres: PGHOST, PGPORT, PGDATABASE; files username, password -> pg_dump --format=custom
#   redis:    REDIS_HOST, REDIS_PORT; file password -> redis-cli --rdb
set -eu
kind="${1:-}"
dir="${BACKUP_DIR:-/backup}/$kind"
secrets="${SECRETS_DIR:-/var/run/secrets/eafix}"
ts="$(date -u +%Y%m%dT%H%M%SZ)"

case "$kind" in
  postgres)
    mkdir -p "$dir"
    PGPASSWORD="$(cat "$secrets/password")"
    export PGPASSWORD
    file="$dir/${PGDATABASE}-${ts}.dump"
    pg_dump --format=custom --no-password --username="$(cat "$secrets/username")" --file="$file.partial"
    ;;
  redis)
    mkdir -p "$dir"
    REDISCLI_AUTH="$(cat "$secrets/password")"
    export REDISCLI_AUTH
    file="$dir/dump-${ts}.rdb"
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --no-auth-warning --rdb "$file.partial"
    ;;
  *)
    echo "dump.sh: unknown kind '$kind' (postgres or redis)" >&2
    exit 2
    ;;
esac

mv "$file.partial" "$file"
echo "wrote $file ($(wc -c < "$file") bytes)"
find "$dir" -type f -mmin "+$((RETENTION_DAYS * 1440))" -print -delete
