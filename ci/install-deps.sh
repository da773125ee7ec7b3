#!/usr/bin/env bash
# Installs what building and testing patronus needs on a bare Debian 12 machine (run as root).
# Idempotent and quick when everything is present.
set -euo pipefail

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v pgbackrest >/dev/null 2>&1 || need+=(pgbackrest)
command -v git >/dev/null 2>&1 || need+=(git)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -d /etc/ssl/certs ] || need+=(ca-certificates)
# The dashboard's browser test (tests/dashboard.rs) drives headless Chromium via chromedriver.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if [ ${#need[@]} -gt 0 ]; then
    echo "ci/install-deps.sh: installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "ci/install-deps.sh: need root to install ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "ci/install-deps.sh: cargo (Rust stable) is required" >&2; exit 1; }
id postgres >/dev/null 2>&1 || { echo "ci/install-deps.sh: the 'postgres' OS user is missing (postgresql-15 creates it)" >&2; exit 1; }
echo "ci/install-deps.sh: etcd $(etcd --version | head -1 | awk '{print $3}'), $(/usr/lib/postgresql/15/bin/postgres --version), $(protoc --version)"
