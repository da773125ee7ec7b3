#!/usr/bin/env bash
# Runs the demo: etcd + 3 members + HAProxy + the GitOps reconciler on loopback, as root on
# Debian 12 (PostgreSQL runs as the postgres user). Installs what it needs; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash ci/install-deps.sh
cargo build --release --quiet
exec target/release/patronus demo "$@"
