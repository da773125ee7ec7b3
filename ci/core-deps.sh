#!/usr/bin/env bash
# The pure HA core (crates/patronus-core) must not depend on anything that can do I/O: no
# runtime, network, filesystem or process crate. Its normal and build dependencies must be in
# the allow-list below (dev-dependencies are free: they only build its tests). Adding tokio,
# reqwest, etcd-client, axum, git2, nix, ... to the core fails here; put such code in the main
# crate and feed its result to the core as data (docs/architecture.md, "The crate boundary").
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=crates/patronus-core/Cargo.toml
# serde/serde_json/thiserror: the data model and errors; chrono without its "clock" feature:
# calendar parsing of a scheduled time; tracing: log macros (the subscriber lives in the agent).
allowed=" serde serde_json thiserror chrono tracing "
deps=$(awk '
    /^\[/ {
        sec = $0; gsub(/[][ ]/, "", sec)
        named = ""
        if (sec ~ /(^|\.)(build-)?dependencies\.[^.]+$/ && sec !~ /dev-dependencies/) {
            named = sec; sub(/.*dependencies\./, "", named); print named
        }
        in_deps = (sec ~ /(^|\.)(build-)?dependencies$/ && sec !~ /dev-dependencies/)
        next
    }
    in_deps && /^[A-Za-z0-9_-]+/ { name = $0; sub(/[ .=].*/, "", name); print name }
' "$manifest")
bad=""
for d in $deps; do
    case "$allowed" in *" $d "*) ;; *) bad="$bad $d" ;; esac
done
if [ -n "$bad" ]; then
    echo "$manifest: dependencies outside the pure core's allow-list:$bad" >&2
    echo "the core must stay free of I/O (allowed:$allowed); move the code that needs them to the main crate" >&2
    exit 1
fi
# std itself is always there: a second, textual check for its I/O modules and the wall clock
# (an `Instant` is taken as input; tests may read the monotonic clock).
io='std::(process|net|fs|env|thread)\b|std::\{[^}]*\b(process|net|fs|env|thread)\b|SystemTime'
if found=$(grep -rnE "$io" crates/patronus-core/src --include='*.rs' | grep -vE '^[^:]*:[0-9]+: *//'); then
    echo "crates/patronus-core uses std I/O or reads a clock; take the value as input instead:" >&2
    echo "$found" >&2
    exit 1
fi
echo "crates/patronus-core depends only on:$(echo $deps)"
