//! Fault-injection run (issue 11): N randomized faults per seed against a real three-member
//! cluster in synchronous mode (real etcd, PostgreSQL 15 and the release `patronus` binary),
//! with a writer and a writability probe on every member. Prints one line per fault and a
//! summary per fault type; exits 1 when an invariant failed (see `tests/common/chaos`).
//!
//! Run: `cargo bench --bench chaos -- [--faults N] [--seed S]...` (or `ci/chaos.sh`).
//! `--seed` may repeat or take a comma list; the default is seeds 1-5 with 10 faults each.

#[path = "../tests/common/mod.rs"]
mod common;

use common::chaos::report::{print_faults, print_summary};
use common::chaos::{self, ChaosOpts};

/// `--faults N` and every `--seed S[,S...]`.
fn args() -> (usize, Vec<u64>) {
    let args: Vec<String> = std::env::args().collect();
    let mut faults = 10;
    let mut seeds = Vec::new();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--faults" => faults = w[1].parse().expect("--faults takes a number"),
            "--seed" | "--seeds" => seeds.extend(
                w[1].split(',')
                    .map(|s| s.trim().parse::<u64>().expect("--seed takes numbers")),
            ),
            _ => {}
        }
    }
    if seeds.is_empty() {
        seeds = (1..=5).collect();
    }
    (faults, seeds)
}

fn main() {
    let (faults, seeds) = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let reports = rt.block_on(async {
        let mut reports = Vec::new();
        for &seed in &seeds {
            eprintln!("seed {seed}: {faults} faults");
            reports.push(chaos::run_seed(&ChaosOpts::new(seed, faults)).await);
        }
        reports
    });
    println!("\nfaults (ttl 10, loop_wait 1, retry_timeout 3, synchronous_mode on; heal time from the repair)\n");
    print_faults(&reports);
    println!();
    print_summary(&reports);
    if reports.iter().any(|r| !r.failures().is_empty()) {
        std::process::exit(1);
    }
}
