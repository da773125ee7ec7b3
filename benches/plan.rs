//! Offline plan throughput: 500 generated clusters planned against an observed-state file.
//!
//! Run: `cargo bench --bench plan -- [--clusters N]` (prints the wall time of
//! `patronus plan --observed`).

#[path = "support/plan_gen.rs"]
mod plan_gen;

fn main() {
    let n: usize = std::env::args()
        .skip_while(|a| a != "--clusters")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = std::env::temp_dir().join(format!("patronus-plan-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let obs = plan_gen::generate(&dir, n);
    let times = plan_gen::time_plan(&dir, &obs, 5);
    println!("offline plan of {n} clusters (validate + plan + render json): median {:.3} s, runs {times:?}", times[times.len() / 2]);
    let _ = std::fs::remove_dir_all(&dir);
}
