#!/usr/bin/env bash
# Starts the whole cstrack system on this machine and seeds the demo portfolio:
# PostgreSQL and RabbitMQ (if stopped), migrations, the command service (with its relay), the
# projection service and the query API, each in the background with its log under $RUN_DIR.
# Run it again to restart the services; deploy/stop.sh stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh

RUN_DIR="${CSTRACK_RUN_DIR:-$HOME/.cache/cstrack/run}"
export CSTRACK_DATABASE_URL="${CSTRACK_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cstrack}"
export CSTRACK_COMMAND_ADDR="${CSTRACK_COMMAND_ADDR:-127.0.0.1:8081}"
export CSTRACK_QUERY_ADDR="${CSTRACK_QUERY_ADDR:-127.0.0.1:8082}"
export CSTRACK_PROJECTION_ADDR="${CSTRACK_PROJECTION_ADDR:-127.0.0.1:8083}"
export CSTRACK_COMMAND_PUBLIC_URL="${CSTRACK_COMMAND_PUBLIC_URL:-http://$CSTRACK_COMMAND_ADDR}"
export CSTRACK_WEB_DIR="${CSTRACK_WEB_DIR:-$PWD/query-api/web/dist}"

require_rust
ensure_postgres
ensure_rabbitmq

database=${CSTRACK_DATABASE_URL##*/}
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" != "1" ]; then
    say "creating database $database"
    psql_admin -c "CREATE DATABASE $database"
fi

WEB=yes
if node_ok; then
    build_web
else
    WEB=no
    say "the web client is not built: $NODE_ADVICE (the APIs run without it)"
fi

say "building (release)"
cargo build --release -p command-service -p projection-service -p query-api
bin="$CARGO_TARGET_DIR/release"

mkdir -p "$RUN_DIR"
bash deploy/stop.sh --quiet

# Tokens are signed with this secret; made once per machine unless given.
if [ -z "${CSTRACK_JWT_SECRET:-}" ]; then
    if [ ! -s "$RUN_DIR/jwt-secret" ]; then
        (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n' >"$RUN_DIR/jwt-secret")
    fi
    CSTRACK_JWT_SECRET=$(cat "$RUN_DIR/jwt-secret")
fi
export CSTRACK_JWT_SECRET

say "migrating"
"$bin/command-service" migrate
"$bin/projection-service" migrate

start() { # name command...
    local name=$1
    shift
    nohup "$@" >"$RUN_DIR/$name.log" 2>&1 &
    echo $! >"$RUN_DIR/$name.pid"
}
start command-service "$bin/command-service" serve
start projection-service "$bin/projection-service" serve
start query-api "$bin/query-api" serve

ready() { curl -fsS "http://$1/readyz" >/dev/null; }
wait_for "command service (log: $RUN_DIR/command-service.log)" 60 ready "$CSTRACK_COMMAND_ADDR"
wait_for "projection service (log: $RUN_DIR/projection-service.log)" 60 ready "$CSTRACK_PROJECTION_ADDR"
wait_for "query API (log: $RUN_DIR/query-api.log)" 60 ready "$CSTRACK_QUERY_ADDR"

say "seeding the demo portfolio (4 CSMs, 60 customers, a year of history; skipped where present)"
"$bin/command-service" seed

PROJECTORS=2 # coverage and customers (events::topology::PROJECTORS)
caught_up() {
    [ "$(psql -h "$PG_HOST" -U postgres -d "$database" -qtAc \
        "SELECT (SELECT count(*) FROM events) * (SELECT count(DISTINCT projector) FROM projector_checkpoints)
                = (SELECT COALESCE(sum(last_sequence), 0) FROM projector_checkpoints)
            AND (SELECT count(DISTINCT projector) FROM projector_checkpoints) = $PROJECTORS")" = "t" ]
}
wait_for "the read models catching up" 300 caught_up

TOKEN=$("$bin/command-service" token --role admin --user demo-admin)
# The demo's people: Dana Whitfield (a CSM, whose user id is her CSM id), a manager, the first
# partner organisation's user and an auditor.
DANA=01900000-0000-7000-8000-000100000000
NORTHWIND=01900000-0000-7000-8000-000400000000
link() { # role user [partner]
    local token
    token=$("$bin/command-service" token --role "$1" --user "$2" ${3:+--partner-id "$3"})
    echo "http://$CSTRACK_QUERY_ADDR/app/sign-in#token=$token"
}
if [ "$WEB" = yes ]; then
    WEB_LINKS="
The web client signs you in from these links (each for 12 hours):
  CSM Dana Whitfield   $(link csm "$DANA")
  Manager              $(link manager demo-manager)
  Partner (Northwind)  $(link partner partner-user-1 "$NORTHWIND")
  Auditor              $(link auditor demo-auditor)
"
else
    WEB_LINKS="
The web client is not built: $NODE_ADVICE, then run this script again.
"
fi

cat <<MSG

cstrack is running.
  Web client      http://$CSTRACK_QUERY_ADDR/app
  REST commands   http://$CSTRACK_COMMAND_ADDR/api/v1/...
  GraphiQL        http://$CSTRACK_QUERY_ADDR/graphiql
  GraphQL         http://$CSTRACK_QUERY_ADDR/graphql (subscriptions: ws://$CSTRACK_QUERY_ADDR/graphql/ws)
  Logs and pids   $RUN_DIR
  Stop            bash deploy/stop.sh
$WEB_LINKS
Commands need a bearer token; mint one per role (admin, manager, csm, partner, readonly, auditor):

  export CSTRACK_JWT_SECRET=\$(cat $RUN_DIR/jwt-secret)
  TOKEN=\$($bin/command-service token --role csm --user dana)

An admin token for the next 12 hours:

  TOKEN=$TOKEN

Try, in GraphiQL or with curl:

  curl -s http://$CSTRACK_QUERY_ADDR/graphql -H "authorization: Bearer \$TOKEN" -H 'content-type: application/json' -d '{"query":
    "{ coverageReport { summary { accounts wellCovered underCovered overCovered underCoveredPct }
       gaps { name tier arr daysSinceContact score priority gapAreas } } }"}'
MSG
