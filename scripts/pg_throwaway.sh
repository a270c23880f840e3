#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks, from Debian's `postgresql` package.
#
#   scripts/pg_throwaway.sh start        initdb + pg_ctl on 127.0.0.1 and a free port; prints
#                                        URL=postgresql://postgres@127.0.0.1:PORT/postgres
#                                        STOP=scripts/pg_throwaway.sh stop DIR
#   scripts/pg_throwaway.sh stop DIR     stops that server and deletes DIR
#
# It listens on 127.0.0.1 only, with trust authentication (a test server, never a real one).
# As root it runs the server as the `postgres` user (initdb refuses root). PG_BIN overrides the
# binaries' directory (default: the newest /usr/lib/postgresql/*/bin). Exit 3: no binaries.
set -euo pipefail

die() { echo "pg_throwaway: $1" >&2; exit "${2:-1}"; }

find_bin() {
    local dir=${PG_BIN:-}
    if [[ -z "$dir" ]]; then
        dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] || die "no PostgreSQL server binaries (apt-get install -y postgresql)" 3
    echo "$dir"
}

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local bin dir port attempt
    bin=$(find_bin)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/leadctx-pg.XXXXXX")
    chmod 755 "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; die "initdb failed"; }
    # Another process may take the port between choosing and binding it: try a few ports.
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1; then
            echo "URL=postgresql://postgres@127.0.0.1:$port/postgres"
            echo "STOP=$0 stop $dir"
            return 0
        fi
    done
    cat "$dir/server.log" >&2 || true
    rm -rf "$dir"
    die "the server did not start within 5 attempts"
}

stop() {
    local dir=${1:?usage: pg_throwaway.sh stop DIR}
    [[ -d "$dir/data" ]] || die "$dir is not a throwaway server's directory"
    local bin
    bin=$(find_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) die "usage: $0 start | stop DIR" 2 ;;
esac
