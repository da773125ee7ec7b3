#!/usr/bin/env bash
# Fault injection: N randomized faults per seed against a real 3-member cluster (real etcd,
# PostgreSQL 15, the release patronus binary) in synchronous mode. Prints per-fault heal times
# and a summary per fault type; exits 1 when an invariant failed. See docs/benchmarks.md.
#   ci/chaos.sh [--faults N] [--seed S]...     (default: seeds 1-5, 10 faults each)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash ci/install-deps.sh
cargo bench --bench chaos -- "$@"
