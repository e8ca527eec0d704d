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

# Real third-party readers of what the service writes: Chromium renders GraphiQL and runs the
# web client under Playwright, LibreOffice converts the decks, Python's openpyxl reads the
# workbooks.
apt_install() { # package...
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } \
            || die "apt-get could not install $*"
    else
        die "the tests need Debian's $* (install it, or run as root with apt-get available)"
    fi
}
if ! command -v chromium >/dev/null 2>&1; then
    say "installing Chromium (for the browser tests of GraphiQL and the web client)"
    apt_install chromium
fi
if ! command -v soffice >/dev/null 2>&1; then
    say "installing LibreOffice Impress (the deck tests convert decks to PDF with it)"
    apt_install libreoffice-impress
fi
if ! command -v pdftotext >/dev/null 2>&1; then
    say "installing poppler-utils (the deck tests read where each word of a rendered deck lands)"
    apt_install poppler-utils
fi
if ! python3 -c "import openpyxl" >/dev/null 2>&1; then
    say "installing openpyxl (the export tests read workbooks with it)"
    if ! python3 -m pip install -q openpyxl >/dev/null 2>&1; then
        apt_install python3-openpyxl
        python3 -c "import openpyxl" >/dev/null 2>&1 || die "openpyxl is not importable by python3"
    fi
fi

# Schemathesis generates requests from schemas/openapi.json alone (openapi_agrees); pinned, so that
# its seed draws the same cases on every machine.
SCHEMATHESIS_VERSION=4.32.5
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
if [ "$(st --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
    say "installing Schemathesis $SCHEMATHESIS_VERSION (the OpenAPI document's client)"
    python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION" >/dev/null 2>&1 \
        || die "pip could not install schemathesis==$SCHEMATHESIS_VERSION"
    command -v st >/dev/null 2>&1 || die "Schemathesis is installed but its command st is not on PATH"
fi

node_ok || die "the web client's tests need Node.js: $NODE_ADVICE"
build_web

say "validating the deployment files"
bash deploy/validate/validate.sh

say "running the tests (target dir: $CARGO_TARGET_DIR)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
