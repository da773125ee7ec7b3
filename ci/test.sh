#!/usr/bin/env bash
# The whole test suite: installs dependencies, checks formatting and lints, then runs unit,
# simulator and integration tests (real etcd + real PostgreSQL on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash ci/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== file size limit (600 lines)"
bash ci/check-file-size.sh
echo "== unit and simulator tests"
cargo test --lib --bins --quiet
echo "== integration tests (real etcd + PostgreSQL)"
# Multi-member tests are heavy on 2 cores: one test binary at a time, two tests at a time.
cargo test --tests -- --test-threads=2
