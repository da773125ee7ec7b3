//! The generated repository and observed-state file of the offline plan benches
//! (`benches/plan.rs`, `benches/fleet.rs`), and the timed `patronus plan --observed` run.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Writes `n` clusters under `dir/clusters/` and their observed state; returns its path.
pub fn generate(dir: &Path, n: usize) -> PathBuf {
    let mut observed = String::from("clusters:\n");
    for i in 0..n {
        let scope = format!("c{i:04}");
        let d = dir.join(format!("clusters/{scope}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        let yaml = format!(
            "config:\n  ttl: 30\n  loop_wait: 10\n  retry_timeout: 10\n  postgresql:\n    use_pg_rewind: true\n    parameters:\n      work_mem: {}MB\n      shared_buffers: 128MB\n      max_connections: {}\n      log_min_duration_statement: 5s\n      random_page_cost: 1.1\n      wal_level: replica\nmembers:\n  {scope}-a:\n    tags:\n      nofailover: false\nrestart_policy: rolling\nmaintenance_windows:\n  - \"Sat 02:00-04:00 UTC\"\n",
            4 + i % 7,
            100 + (i % 3) * 50
        );
        std::fs::write(d.join("cluster.yaml"), yaml).expect("write");
        let _ = write!(
            observed,
            "  - scope: {scope}\n    exists: true\n    config_version: {}\n    leader: {scope}-a\n    config:\n      ttl: 30\n      loop_wait: 10\n      retry_timeout: 10\n      postgresql:\n        parameters:\n          work_mem: 4MB\n          shared_buffers: 128MB\n          max_connections: 100\n    members:\n      - {{name: {scope}-a, role: leader}}\n      - {{name: {scope}-b, role: replica}}\n      - {{name: {scope}-c, role: replica}}\n",
            i + 1
        );
    }
    let obs = dir.join("observed.yaml");
    std::fs::write(&obs, observed).expect("write observed");
    obs
}

/// Wall times (sorted, seconds) of `runs` runs of `patronus plan --repo dir --observed obs`.
pub fn time_plan(dir: &Path, obs: &Path, runs: usize) -> Vec<f64> {
    let bin = env!("CARGO_BIN_EXE_patronus");
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = std::process::Command::new(bin)
            .args(["plan", "--repo"])
            .arg(dir)
            .arg("--observed")
            .arg(obs)
            .args(["--format", "json", "--out", "/dev/null"])
            .output()
            .expect("run patronus plan");
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times
}
