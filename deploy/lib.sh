# Shared by deploy/start.sh and deploy/test.sh: tool checks and starting the local PostgreSQL and
# RabbitMQ when they are installed but stopped. Sourced, not run.

PG_HOST=127.0.0.1
PG_PORT=5432
AMQP_PORT=5672
# Outside the clone, so a fresh clone reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cstrack/target}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

require_rust() {
    command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install the Rust toolchain (https://rustup.rs) and retry."
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # description seconds command...
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    die "$what did not come up within ${seconds}s"
}

ensure_postgres() {
    if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
        return 0
    fi
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        say "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || die "PostgreSQL $version failed to start"
        wait_for "PostgreSQL" 60 pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
        return 0
    fi
    die "PostgreSQL is not installed and nothing answers on $PG_HOST:$PG_PORT.
       Install it (Debian: apt-get install postgresql) with trust authentication for local TCP, or
       point CSTRACK_DATABASE_URL at a running server."
}

ensure_rabbitmq() {
    if port_open "$AMQP_PORT"; then
        return 0
    fi
    if command -v rabbitmq-server >/dev/null 2>&1; then
        say "starting RabbitMQ"
        rabbitmq-server -detached || die "RabbitMQ failed to start"
        wait_for "RabbitMQ" 90 port_open "$AMQP_PORT"
        # The port opens before the broker accepts work; wait for it to finish booting.
        command -v rabbitmqctl >/dev/null 2>&1 && rabbitmqctl -q await_startup >/dev/null 2>&1 || true
        return 0
    fi
    die "RabbitMQ is not installed and nothing answers on 127.0.0.1:$AMQP_PORT.
       Install it (Debian: apt-get install rabbitmq-server) with the guest/guest user, or point
       CSTRACK_AMQP_URL at a running broker."
}

psql_admin() {
    psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

# The event store's tables: what deploy/backup.sh keeps and deploy/restore.sh brings back.
STORE_TABLES=(events snapshots stream_heads store_digests idempotency_keys idempotency_appends
    activity_index relay_cursor audit_access_log alerts alert_conditions)
# What is neither an event nor rebuilt from the events, and a restored system needs: imports
# (their files, status and results, which undo reads), deck templates, notification preferences,
# webhooks and their secrets, the delivery log and in-app inbox, the connectors' cursors, runs,
# written-back values, rotated tokens and work-item links, the scheduled touches, saved views and
# each user's focus pins.
SETTINGS_TABLES=(imports deck_templates notification_preferences webhooks notification_deliveries
    notification_attempts notification_inbox notification_digests connector_cursors connector_runs connector_pushes
    connector_values connector_tokens work_item_links work_items scheduled_touches saved_views
    focus_pins)

# The web client (query-api/web): React, built by Vite with Node.js 20.19 or newer.
node_ok() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
        && node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}

NODE_ADVICE="install Node.js 20.19 or newer with npm (https://nodejs.org, or NodeSource's Debian packages); Debian 12's own nodejs is too old for Vite"

# Installs the client's locked dependencies (when the lock file changed) and builds it into
# query-api/web/dist, which the query API serves at /app.
build_web() {
    local web=query-api/web
    # Carbon's packages carry a telemetry post-install script; npm does not run it, and this
    # says no to it as well.
    export IBM_TELEMETRY_DISABLED=true
    if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
        say "installing the web client's dependencies (npm ci)"
        (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $web"
    fi
    say "building the web client"
    (cd "$web" && npm run --silent build) || die "the web client did not build (npm run build in $web)"
}
