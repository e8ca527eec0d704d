#!/usr/bin/env bash
# Restores a backup made by deploy/backup.sh into a new database, then proves it: every hash
# chain and sealed digest verified (`command-service verify --all`), and every read model
# rebuilt from the restored store (`projection-service rebuild --projection all`).
#
# usage: deploy/restore.sh FILE DATABASE
#   DATABASE           a new database on the local server (it must not exist yet)
#   CSTRACK_BIN_DIR    where the command-service and projection-service binaries are
#                      (default: the release builds of deploy/start.sh)
#
# Point the services at the new database (CSTRACK_DATABASE_URL) once it is restored.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

file=${1:?usage: deploy/restore.sh FILE DATABASE}
name=${2:?usage: deploy/restore.sh FILE DATABASE}
bin=${CSTRACK_BIN_DIR:-$CARGO_TARGET_DIR/release}
[ -f "$file" ] || die "no backup at $file"
[[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || die "a database name is lower-case letters, digits and _"
for tool in pg_restore psql; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (Debian: apt-get install postgresql-client)"
done
for binary in command-service projection-service; do
    [ -x "$bin/$binary" ] || die "no $binary in $bin: build it (cargo build --release) or set CSTRACK_BIN_DIR"
done

exists=$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$name'")
[ -z "$exists" ] || die "database $name exists already: restore into a new one"
psql_admin -c "CREATE DATABASE $name"
url="postgres://postgres@$PG_HOST:$PG_PORT/$name"
export CSTRACK_DATABASE_URL=$url

say "creating the tables"
"$bin/command-service" migrate
"$bin/projection-service" migrate
say "restoring the store"
# The rows come back as they were stored: their hashes and positions included, with the
# append-time triggers (hash chain, idempotency register) off, in one transaction.
pg_restore --data-only --disable-triggers --single-transaction --exit-on-error --no-owner -d "$url" "$file"
say "verifying every hash chain and digest"
"$bin/command-service" verify --all
say "rebuilding every read model from the restored store"
"$bin/projection-service" rebuild --projection all
say "restored $file into $name"
