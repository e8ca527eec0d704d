#!/usr/bin/env bash
# Stops the services deploy/start.sh started (PostgreSQL and RabbitMQ keep running).
set -uo pipefail
RUN_DIR="${CSTRACK_RUN_DIR:-$HOME/.cache/cstrack/run}"
for name in query-api projection-service command-service; do
    pid_file="$RUN_DIR/$name.pid"
    [ -f "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
        [ "${1:-}" = "--quiet" ] || echo "stopped $name"
    fi
    rm -f "$pid_file"
done
