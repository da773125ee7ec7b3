#!/usr/bin/env bash
# The whole test suite: installs dependencies, checks formatting and lints, then runs unit,
# simulator and integration tests (real etcd + real PostgreSQL on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

echo "== the repository is self-contained"
# Nothing tracked may read a path outside the repository (a fresh clone has nothing beside it).
# The directory beside the clone that developers have and users do not (spelled in two parts
# so that this check does not find itself).
beside="shar""ed"
if outside=$(git grep -n -e "\.\./$beside" -- .); then
    echo "tracked files refer to ../$beside (outside the repository); use tests/fixtures/ instead:" >&2
    echo "$outside" >&2
    exit 1
fi

bash ci/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== the HA core crate has no I/O dependency (crates/patronus-core, tests/ha_purity.rs)"
# Built alone, the core gets only its own dependency features (e.g. chrono without "clock").
cargo check -p patronus-core --all-targets --quiet
cargo test --test ha_purity --quiet
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== file size limit (600 lines, src/, crates/, tests/, benches/)"
bash ci/check-file-size.sh
echo "== unit and simulator tests (main crate and crates/patronus-core)"
cargo test --workspace --lib --bins --quiet
echo "== integration tests (real etcd + PostgreSQL)"
# Multi-member tests are heavy on 2 cores: one test binary at a time, two tests at a time.
cargo test --tests -- --test-threads=2
