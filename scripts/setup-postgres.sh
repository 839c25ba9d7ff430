#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable and exports DATABASE_URL for the tests.
# Source it (`source scripts/setup-postgres.sh`) or run it to print the URL. Idempotent.
#
# Order: an existing $DATABASE_URL that answers; a server on 127.0.0.1:5432 (user postgres,
# trust auth); otherwise Debian's postgresql is installed when missing and a throwaway cluster
# is started on 127.0.0.1:55432 under /tmp/subnet-pg (reused by later runs).

pg_setup_main() {
  local port=55432 dir=/tmp/subnet-pg bin
  if [ -n "${DATABASE_URL:-}" ] && pg_setup_answers "$DATABASE_URL"; then
    echo "setup-postgres: using DATABASE_URL"
    return 0
  fi
  if pg_setup_answers "postgres://postgres@127.0.0.1:5432/postgres"; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    echo "setup-postgres: using the server on 127.0.0.1:5432"
    return 0
  fi
  if pg_setup_answers "postgres://postgres@127.0.0.1:$port/postgres"; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "setup-postgres: using the throwaway cluster on 127.0.0.1:$port"
    return 0
  fi
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "setup-postgres: installing postgresql (apt)" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; then
      echo "setup-postgres: could not install PostgreSQL; install the 'postgresql' package or set DATABASE_URL" >&2
      return 1
    fi
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  id postgres >/dev/null 2>&1 || useradd --system --home "$dir" postgres
  mkdir -p "$dir" && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    su postgres -c "$bin/initdb -D $dir/data -A trust -U postgres -N" >/dev/null
  fi
  su postgres -c "$bin/pg_ctl -D $dir/data -o '-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200' -l $dir/log -w start" >/dev/null
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  if ! pg_setup_answers "$DATABASE_URL"; then
    echo "setup-postgres: the cluster in $dir did not start; see $dir/log" >&2
    return 1
  fi
  echo "setup-postgres: started a throwaway cluster on 127.0.0.1:$port ($dir)"
}

# True when a server answers at the URL (psql when present, else a TCP probe of host:port).
pg_setup_answers() {
  local url=$1 hostport host port
  if command -v psql >/dev/null 2>&1; then
    psql "$url" -qAtc 'select 1' >/dev/null 2>&1
    return $?
  fi
  hostport=${url#*@}; hostport=${hostport%%/*}; host=${hostport%%:*}; port=${hostport##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  pg_setup_main
  echo "$DATABASE_URL"
else
  pg_setup_main
fi
