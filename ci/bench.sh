#!/usr/bin/env bash
# Benchmark: patronus (and, with --peer patroni, Patroni 4.1.5 from PyPI) on real etcd +
# PostgreSQL on loopback, then the dashboard's render time. Prints medians; see
# docs/benchmarks.md.
#   ci/bench.sh [--runs N] [--peer patroni] [--https]   (--https: GET /primary over TLS only)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash ci/install-deps.sh
command -v wrk >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [[ " $* " == *" --peer patroni "* ]]; then
    # Patroni runs as the postgres user: its venv must use a Python that user can reach.
    if ! /opt/patroni-venv/bin/patroni --version 2>/dev/null | grep -q 4.1.5; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        rm -rf /opt/patroni-venv
        /usr/bin/python3 -m venv /opt/patroni-venv
        /opt/patroni-venv/bin/pip install -q "patroni[etcd3]==4.1.5" psycopg2-binary
    fi
fi
cargo bench --bench ha -- "$@"
# Server-side render of the dashboard's fleet page for 200 clusters (goal <= 100 ms).
cargo bench --bench dashboard
# A fleet under one reconciler: 200 clusters (simulated agents) on one etcd, one commit changing
# all 200, idle CPU and RSS, offline plan of 1,000 clusters (goals 2 s, 64 MB, 1 s).
cargo bench --bench fleet
