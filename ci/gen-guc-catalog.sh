#!/usr/bin/env bash
# Regenerates the offline catalog of PostgreSQL parameters (GUCs) that the GitOps
# reconciler validates desired configuration against.
#
# Usage: ci/gen-guc-catalog.sh [PG_BIN_DIR] [OUT_FILE]
#   PG_BIN_DIR  PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   OUT_FILE    where to write the JSON (default schema/guc/postgresql-<major>.json
#               in this repository)
#
# It initialises a throw-away cluster in a temporary directory, starts it on a free
# port with a Unix socket only, dumps pg_settings as JSON and removes everything
# again. Run as root (the server then runs as the 'postgres' OS user) or as any
# other non-root user (the server runs as that user).
set -euo pipefail

usage() {
    echo "usage: ci/gen-guc-catalog.sh [PG_BIN_DIR] [OUT_FILE]" >&2
    exit 2
}

case "${1:-}" in
    -h | --help) usage ;;
esac
[ $# -le 2 ] || usage

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
pg_bin="${1:-/usr/lib/postgresql/15/bin}"

for tool in initdb pg_ctl postgres psql; do
    [ -x "$pg_bin/$tool" ] || { echo "gen-guc-catalog: $pg_bin/$tool not found" >&2; exit 1; }
done
command -v python3 >/dev/null 2>&1 || { echo "gen-guc-catalog: python3 is required" >&2; exit 1; }

# Major version from "postgres (PostgreSQL) 15.18 (Debian ...)".
version="$("$pg_bin/postgres" -V | awk '{print $3}')"
major="${version%%.*}"
case "$major" in
    '' | *[!0-9]*) echo "gen-guc-catalog: cannot read the major version from '$version'" >&2; exit 1 ;;
esac

out="${2:-$repo_root/schema/guc/postgresql-$major.json}"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"

# Runs a command as the server's OS user.
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "gen-guc-catalog: the 'postgres' OS user is missing" >&2; exit 1; }
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/guc-catalog.XXXXXX")"
chmod 1777 "$tmp"
data="$tmp/data"
started=0

cleanup() {
    local rc=$?
    if [ "$started" -eq 1 ]; then
        (cd "$tmp" && as_pg "$pg_bin/pg_ctl" stop -D "$data" -m fast -w >/dev/null 2>&1) || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# A TCP port nobody listens on; the server only uses it to name its socket file.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"

# The server's user may not be able to enter the caller's directory.
cd "$tmp"

as_pg "$pg_bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log" >&2; exit 1; }

started=1
as_pg "$pg_bin/pg_ctl" start -w -D "$data" -l "$tmp/server.log" \
    -o "-p $port -k $tmp -c listen_addresses=''" >/dev/null \
    || { cat "$tmp/server.log" >&2; exit 1; }

query="
SELECT json_build_object(
    'postgresql_major', current_setting('server_version_num')::int / 10000,
    'generated_from', 'pg_settings of PostgreSQL ' || current_setting('server_version'),
    'parameters', (
        SELECT json_agg(json_build_object(
            'name', name,
            'vartype', vartype,
            'unit', unit,
            'min', min_val,
            'max', max_val,
            'enumvals', to_json(enumvals),
            'context', context,
            'default', boot_val,
            'description', short_desc
        ) ORDER BY name)
        FROM (SELECT name, vartype, unit, min_val, max_val, enumvals, context, boot_val, short_desc
              FROM pg_settings ORDER BY name) AS s
    )
)"

raw="$tmp/catalog.raw.json"
PGCONNECT_TIMEOUT=10 "$pg_bin/psql" -X -q -At -v ON_ERROR_STOP=1 \
    -h "$tmp" -p "$port" -U postgres -d postgres -c "$query" >"$raw"

python3 -m json.tool --indent 2 "$raw" >"$tmp/catalog.json"
count="$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["parameters"]))' "$tmp/catalog.json")"
mv "$tmp/catalog.json" "$out"
chmod 644 "$out"
echo "gen-guc-catalog: wrote $count parameters of PostgreSQL $version to $out"
