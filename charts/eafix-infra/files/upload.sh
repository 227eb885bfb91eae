#!/bin/sh
# Copy the finished dumps of $BACKUP_DIR/$BACKUP_KIND to the object store with rclone, then delete
# remote dumps older than RETENTION_DAYS. rclone is configured from the environment only (remote
# `store`); the access keys are files under $OBJECTSTORE_SECRETS_DIR, else the pod's workload
# identity is used.
set -eu
export HOME="${TMPDIR:-/tmp}" RCLONE_CONFIG="${TMPDIR:-/tmp}/rclone.conf"
keys="${OBJECTSTORE_SECRETS_DIR:-/var/run/secrets/objectstore}"

export RCLONE_CONFIG_STORE_TYPE="$STORE_TYPE"
if [ -n "$STORE_PROVIDER" ]; then export RCLONE_CONFIG_STORE_PROVIDER="$STORE_PROVIDER"; fi
if [ -n "$STORE_REGION" ]; then export RCLONE_CONFIG_STORE_REGION="$STORE_REGION"; fi
if [ -n "$STORE_ENDPOINT" ]; then export RCLONE_CONFIG_STORE_ENDPOINT="$STORE_ENDPOINT"; fi
if [ -f "$keys/AWS_ACCESS_KEY_ID" ]; then
  RCLONE_CONFIG_STORE_ACCESS_KEY_ID="$(cat "$keys/AWS_ACCESS_KEY_ID")"
  RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY="$(cat "$keys/AWS_SECRET_ACCESS_KEY")"
  export RCLONE_CONFIG_STORE_ACCESS_KEY_ID RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY
else
  export RCLONE_CONFIG_STORE_ENV_AUTH=true
fi

local_dir="${BACKUP_DIR:-/backup}/${BACKUP_KIND}"
remote="store:${STORE_BUCKET}/${STORE_PREFIX}/${BACKUP_KIND}"
rclone copy "$local_dir" "$remote" --exclude '*.partial'
rclone delete "$remote" --min-age "${RETENTION_DAYS}d"
echo "synced $local_dir to $remote"
