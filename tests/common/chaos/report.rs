//! What a chaos run found: one record per fault, the per-seed report, the printed tables,
//! and copies of the member logs of a failed fault.

use super::super::TestCluster;
use super::fault::{Applied, Fault, FaultKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The outcome of one fault.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    /// Seed of the plan.
    pub seed: u64,
    /// Position in the plan.
    pub index: usize,
    /// What was injected.
    pub kind: FaultKind,
    /// The member (or "etcd") it hit.
    pub target: String,
    /// Whether the target held the leader key at injection.
    pub target_was_leader: bool,
    /// How long the fault was held.
    pub hold: Duration,
    /// When it was injected.
    pub started: Instant,
    /// When it was repaired (restart, SIGCONT, thaw; the injection for one-shot faults).
    pub repaired: Instant,
    /// From the repair to healed (None: never healed within the deadline).
    pub heal: Option<Duration>,
    /// When it was healed.
    pub healed_at: Option<Instant>,
    /// Longest gap between acknowledged writes from the injection to the heal.
    pub write_gap: Duration,
    /// Acknowledged ids missing on the leader after this fault.
    pub lost: Vec<i64>,
    /// Probe rounds with two writable members in this fault's window.
    pub violations: Vec<String>,
    /// The same while the leader's agent was frozen (issue 13, not counted as failures).
    pub known_violations: Vec<String>,
    /// Problems of the injection or the checks.
    pub problems: Vec<String>,
    /// Leader key, sync key and `/patroni` of every member when the fault did not heal.
    pub state: Option<String>,
    /// Where the member logs were copied.
    pub logs: Option<PathBuf>,
    /// The last heal condition that was not met (the slowest one).
    pub waited_for: String,
    /// A fault that did not heal: how long the operator's restart of the replicas' agents
    /// took to heal it (None: not needed, or it did not heal either).
    pub operator_repair: Option<Duration>,
}

impl FaultRecord {
    /// A record of `f` as injected (`a`), repaired at `repaired`.
    pub fn new(seed: u64, index: usize, f: &Fault, a: Applied, repaired: Instant) -> FaultRecord {
        FaultRecord {
            seed,
            index,
            kind: f.kind,
            target: a.target,
            target_was_leader: a.target_was_leader,
            hold: f.hold,
            started: a.started.unwrap_or(repaired),
            repaired,
            heal: None,
            healed_at: None,
            write_gap: Duration::ZERO,
            lost: Vec::new(),
            violations: Vec::new(),
            known_violations: Vec::new(),
            problems: a.problem.into_iter().collect(),
            state: None,
            logs: None,
            operator_repair: None,
            waited_for: String::new(),
        }
    }

    /// Adds a problem.
    pub fn note(&mut self, what: &str) {
        self.problems.push(what.to_string());
    }

    /// Whether an invariant failed in this fault.
    pub fn failed(&self) -> bool {
        self.heal.is_none()
            || !self.lost.is_empty()
            || !self.violations.is_empty()
            || !self.problems.is_empty()
    }

    /// One line: fault type, seed, index, target, hold, heal seconds and the checks; for a
    /// heal slower than 3 s, the condition met last.
    pub fn line(&self) -> String {
        let mut s = format!(
            "seed {:>6} #{:<2} {:<24} target {}{:<9} hold {:>2} s  heal {:>7}  write gap {:>6.2} s  lost {}  violations {}  known {}",
            self.seed,
            self.index,
            self.kind.name(),
            self.target,
            if self.target_was_leader { " (leader)" } else { "" },
            self.hold.as_secs(),
            self.heal
                .map_or("NEVER".into(), |h| format!("{:.2} s", h.as_secs_f64())),
            self.write_gap.as_secs_f64(),
            self.lost.len(),
            self.violations.len(),
            self.known_violations.len(),
        );
        if self.heal.is_none_or(|h| h > Duration::from_secs(3)) && !self.waited_for.is_empty() {
            s.push_str(&format!("  (last waited for: {})", self.waited_for));
        }
        if !self.problems.is_empty() {
            s.push_str(&format!("  PROBLEM: {}", self.problems.join("; ")));
        }
        if let Some(d) = self.operator_repair {
            s.push_str(&format!(
                " (restarting the replicas' agents healed it in {:.2} s)",
                d.as_secs_f64()
            ));
        }
        s
    }
}

/// Everything one seed's run found.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// One record per injected fault.
    pub faults: Vec<FaultRecord>,
    /// Violations seen before the first fault.
    pub setup_violations: Vec<String>,
    /// Probe rounds.
    pub rounds: usize,
    /// Writes acknowledged.
    pub acked: usize,
    /// A fault never healed and the rest of the plan was dropped.
    pub aborted: bool,
    /// The final check of the writes could not run (why).
    pub final_check: Option<String>,
}

impl SeedReport {
    /// An empty report for `seed`.
    pub fn new(seed: u64) -> SeedReport {
        SeedReport {
            seed,
            faults: Vec::new(),
            setup_violations: Vec::new(),
            rounds: 0,
            acked: 0,
            aborted: false,
            final_check: None,
        }
    }

    /// The ids of `missing` not yet blamed on an earlier fault.
    pub fn new_losses(&self, missing: Vec<i64>) -> Vec<i64> {
        let known: std::collections::HashSet<i64> = self
            .faults
            .iter()
            .flat_map(|r| r.lost.iter().copied())
            .collect();
        missing
            .into_iter()
            .filter(|id| !known.contains(id))
            .collect()
    }

    /// Gives every violating probe round to the fault whose window (injection to the next
    /// injection) holds it; those during a frozen leader agent are the known case.
    pub fn assign_violations(&mut self, seen: &[(Instant, String)]) {
        for (at, what) in seen {
            let Some(r) = self.faults.iter_mut().rev().find(|r| r.started <= *at) else {
                self.setup_violations.push(what.clone());
                continue;
            };
            if r.kind == FaultKind::StopAgent && r.target_was_leader {
                r.known_violations.push(what.clone());
            } else {
                r.violations.push(what.clone());
            }
        }
    }

    /// Every failed invariant, one line each with its evidence.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .faults
            .iter()
            .filter(|r| r.failed())
            .map(|r| {
                let mut s = r.line();
                if !r.lost.is_empty() {
                    s.push_str(&format!("\n    lost ids: {:?}", r.lost));
                }
                if !r.violations.is_empty() {
                    s.push_str(&format!("\n    probe: {:?}", r.violations));
                }
                if let Some(st) = &r.state {
                    s.push_str(&format!("\n    state: {st}"));
                }
                if let Some(l) = &r.logs {
                    s.push_str(&format!("\n    logs: {}", l.display()));
                }
                s
            })
            .collect();
        if !self.setup_violations.is_empty() {
            out.push(format!(
                "seed {}: before the first fault: {:?}",
                self.seed, self.setup_violations
            ));
        }
        if let Some(why) = &self.final_check {
            out.push(format!("seed {}: final write check: {why}", self.seed));
        }
        out
    }
}

/// Longest stretch inside `[from, to]` without an acknowledged write (`acks` in order).
pub fn gap_within(acks: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut best = Duration::ZERO;
    let mut last = from;
    for &t in acks.iter().filter(|t| **t > from && **t <= to) {
        best = best.max(t - last);
        last = t;
    }
    best.max(to.saturating_duration_since(last))
}

/// Copies the member logs and etcd's log to `dir/seed-S/fault-K-kind/`.
pub fn save_logs(
    c: &TestCluster,
    dir: &Path,
    seed: u64,
    k: usize,
    kind: FaultKind,
) -> Option<PathBuf> {
    let to = dir.join(format!("seed-{seed}/fault-{k}-{}", kind.name()));
    std::fs::create_dir_all(&to).ok()?;
    for n in &c.nodes {
        let _ = std::fs::copy(&n.log, to.join(format!("{}.log", n.name)));
        let mut pg_log = n.data_dir.clone().into_os_string();
        pg_log.push(".log");
        let _ = std::fs::copy(pg_log, to.join(format!("{}-postgres.log", n.name)));
        copy_histories(&n.data_dir.join("pg_wal"), &to, &n.name);
    }
    let _ = std::fs::copy(c.etcd.log_path(), to.join("etcd.log"));
    Some(to)
}

/// Copies the timeline history files of one member (`<member>-<file>`).
fn copy_histories(wal: &Path, to: &Path, member: &str) {
    let Ok(dir) = std::fs::read_dir(wal) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".history") {
            let _ = std::fs::copy(e.path(), to.join(format!("{member}-{name}")));
        }
    }
}

/// Prints one line per fault of every seed.
pub fn print_faults(reports: &[SeedReport]) {
    for r in reports {
        for f in &r.faults {
            println!("{}", f.line());
        }
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Prints the summary: per fault type the count, median and largest heal time, median write
/// gap, lost writes, violations (and the known frozen-agent ones); then totals and failures.
pub fn print_summary(reports: &[SeedReport]) {
    let all: Vec<&FaultRecord> = reports.iter().flat_map(|r| &r.faults).collect();
    println!("| fault | n | median heal s | max heal s | median write gap s | lost writes | violations | known (issue 13) | not healed |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for kind in FaultKind::ALL {
        let of: Vec<&&FaultRecord> = all.iter().filter(|r| r.kind == kind).collect();
        if of.is_empty() {
            continue;
        }
        let mut heals: Vec<f64> = of
            .iter()
            .filter_map(|r| r.heal.map(|h| h.as_secs_f64()))
            .collect();
        let mut gaps: Vec<f64> = of.iter().map(|r| r.write_gap.as_secs_f64()).collect();
        let max = heals.iter().copied().fold(f64::NAN, f64::max);
        let fmt = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.2}"));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            kind.name(),
            of.len(),
            fmt(median(&mut heals)),
            fmt((!max.is_nan()).then_some(max)),
            fmt(median(&mut gaps)),
            of.iter().map(|r| r.lost.len()).sum::<usize>(),
            of.iter().map(|r| r.violations.len()).sum::<usize>(),
            of.iter().map(|r| r.known_violations.len()).sum::<usize>(),
            of.iter().filter(|r| r.heal.is_none()).count(),
        );
    }
    let seeds: Vec<u64> = reports.iter().map(|r| r.seed).collect();
    println!(
        "\nseeds {seeds:?}: {} faults, {} writes acknowledged, {} lost, {} probe rounds, {} violating rounds, {} known frozen-agent rounds (issue 13)",
        all.len(),
        reports.iter().map(|r| r.acked).sum::<usize>(),
        all.iter().map(|r| r.lost.len()).sum::<usize>(),
        reports.iter().map(|r| r.rounds).sum::<usize>(),
        all.iter().map(|r| r.violations.len()).sum::<usize>()
            + reports.iter().map(|r| r.setup_violations.len()).sum::<usize>(),
        all.iter().map(|r| r.known_violations.len()).sum::<usize>(),
    );
    let failures: Vec<String> = reports.iter().flat_map(SeedReport::failures).collect();
    println!("failures: {}", failures.len());
    for f in failures {
        println!("  {f}");
    }
}
