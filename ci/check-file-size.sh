#!/usr/bin/env bash
# Fails on any tracked Rust file over 600 lines (house style: split by concept), in every
# workspace crate: src/, crates/ (the pure HA core), tests/, benches/.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(git ls-files '*.rs' | xargs wc -l | awk '$2 != "total" && $1 > 600 {print $2 " (" $1 " lines)"}')
if [ -n "$bad" ]; then
    echo "files over 600 lines:"
    echo "$bad"
    exit 1
fi
