#!/usr/bin/env bash
# Runs every test of cstrack against the local PostgreSQL and RabbitMQ (started here when they are
# installed but stopped). Each test creates its own database and broker names and removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh

require_rust
ensure_postgres
ensure_rabbitmq

# Leftovers of an interrupted run: test databases and queues all carry the cstrack_t prefix.
for db in $(psql_admin -c "SELECT datname FROM pg_database WHERE datname LIKE 'cstrack\_t\_%'"); do
    psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
done
if command -v rabbitmqctl >/dev/null 2>&1; then
    for queue in $(rabbitmqctl -q list_queues name --no-table-headers 2>/dev/null | grep '^cstrack_t_' || true); do
        rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1 || true
    done
fi

say "checking formatting"
cargo fmt --all -- --check || die "cargo fmt --all would change files"

# The GraphiQL test renders the page in a real browser.
if ! command -v chromium >/dev/null 2>&1; then
    say "installing Chromium (for the browser test of GraphiQL)"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
            || die "apt-get could not install chromium"
    else
        die "Chromium is needed for the GraphiQL browser test: install Debian's chromium package (or set CSTRACK_CHROMIUM)"
    fi
fi

say "validating the deployment files"
bash deploy/validate/validate.sh

say "running the tests (target dir: $CARGO_TARGET_DIR)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
