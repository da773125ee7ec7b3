#!/usr/bin/env bash
# Runs a local 3-member patronus cluster on loopback: etcd on 2379, REST on 8001-8003,
# PostgreSQL on 5432-5434 (as the postgres user). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash ci/install-deps.sh
cargo build --release --quiet
bin=target/release/patronus
work=/var/tmp/patronus-demo
rm -rf "$work" && mkdir -p "$work" && chmod 1777 "$work"

pids=()
cleanup() {
    echo; echo "stopping the demo..."
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

etcd --name demo --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster demo=http://127.0.0.1:2380 \
    --logger=zap --log-level=error > "$work/etcd.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do
    "$bin" agent -c "examples/nodes/node$i.yml" > "$work/agent-node$i.log" 2>&1 &
    pids+=($!)
done
echo "waiting for the cluster..."
for _ in $(seq 1 120); do
    n=0
    for i in 1 2 3; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:800$i/health" || true)
        [ "$code" = 200 ] && n=$((n+1))
    done
    [ "$n" = 3 ] && break
    sleep 1
done
curl -s http://127.0.0.1:8001/cluster | python3 -m json.tool
cat <<TXT

patronus demo is running (logs in $work):
  primary:  psql "postgresql://postgres:postgres@127.0.0.1:5432,127.0.0.1:5433,127.0.0.1:5434/postgres?target_session_attrs=read-write"
  REST:     curl http://127.0.0.1:8001/cluster
  DCS:      ETCDCTL_API=3 etcdctl get --prefix /service/demo
  change a parameter on every member:
            curl -XPATCH -d '{"postgresql":{"parameters":{"work_mem":"8MB"}}}' http://127.0.0.1:8001/config
Press Ctrl-C to stop.
TXT
wait
