//! Server-side render time of the dashboard's fleet page for 200 clusters (pure function over
//! a synthetic status document: 3 members each with lags and tags, applied commit, live and
//! desired config, drift log, timeline history). Goal: ≤ 100 ms. Exits 1 above the goal.
//!
//! Run: `cargo bench --bench dashboard -- [--clusters N] [--runs N]`.

use patronus::gitops::dashboard::{cluster::cluster_main, fleet::fleet_main};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

const GOAL: Duration = Duration::from_millis(100);

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cluster(i: usize) -> Value {
    let scope = format!("c{i:04}");
    let member = |n: &str, role: &str, lag: u64| {
        json!({"name": format!("{scope}-{n}"), "role": role, "state": if role == "leader" { "running" } else { "streaming" },
               "host": "10.0.0.1", "port": 5432, "timeline": 3, "lag": lag, "receive_lag": lag, "replay_lag": lag,
               "tags": {"nofailover": false, "zone": "eu-1a"}})
    };
    let params = json!({"work_mem": format!("{}MB", 4 + i % 7), "shared_buffers": "128MB", "max_connections": 100,
        "log_min_duration_statement": "5s", "random_page_cost": 1.1, "wal_level": "replica"});
    let mut live = params.clone();
    live["work_mem"] = json!(if i.is_multiple_of(10) {
        "64MB".to_string()
    } else {
        format!("{}MB", 4 + i % 7)
    });
    json!({
        "leader": format!("{scope}-a"),
        "members": [member("a", "leader", 0), member("b", "replica", (i as u64) * 1024), member("c", "replica", 0)],
        "applied": {"commit": "0123456789abcdef0123456789abcdef01234567", "author": "Dana DBA <dana@example.com>",
                    "applied_at": "2026-11-30T06:00:00Z"},
        "drift_events": i % 4, "pending_restarts": i % 3, "timeline": 3, "sync_mode": "on", "paused": i.is_multiple_of(50),
        "desired_config": {"ttl": 30, "postgresql": {"parameters": params}},
        "live_config": {"ttl": 30, "loop_wait": 10, "postgresql": {"parameters": live}},
        "history": [{"timeline": 1, "lsn": 1000, "reason": "no recovery target specified", "new_leader": format!("{scope}-b")},
                    {"timeline": 2, "lsn": 2000, "reason": "no recovery target specified", "new_leader": format!("{scope}-a")}],
        "drift_log": (0..5).map(|k| json!({"event": "drift", "at": "2026-11-30T06:00:00Z", "key": format!("postgresql.parameters.k{k}"),
                    "git": "1", "live": "2", "policy": "alert"})).collect::<Vec<_>>(),
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let (n, runs) = (arg("--clusters", 200), arg("--runs", 21));
    let clusters: Map<String, Value> = (0..n).map(|i| (format!("c{i:04}"), cluster(i))).collect();
    let doc = json!({"last_pass": "2026-11-30T06:59:59Z", "clusters": clusters,
        "desired_commit": {"sha": "0123456789abcdef", "author": "Dana DBA <dana@example.com>", "summary": "tune work_mem"}});
    let now = chrono::Utc::now();
    let mut fleet = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        size = std::hint::black_box(fleet_main(&doc, now)).len();
        fleet.push(t.elapsed());
    }
    let mut one = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(cluster_main(&doc, "c0100", &[], now));
        one.push(t.elapsed());
    }
    let (f, c) = (median(fleet.clone()), median(one));
    println!(
        "fleet page, {n} clusters: median {:.2} ms, max {:.2} ms over {runs} runs ({size} bytes); cluster page: median {:.3} ms",
        f.as_secs_f64() * 1e3,
        fleet.iter().max().copied().unwrap_or_default().as_secs_f64() * 1e3,
        c.as_secs_f64() * 1e3
    );
    if f > GOAL {
        eprintln!("above the goal of {} ms", GOAL.as_millis());
        std::process::exit(1);
    }
}
