//! Fault injection on a real three-member cluster in synchronous mode: a seeded plan of
//! faults (agent and postmaster crashes, SIGTERM, SIGSTOP, switchover, etcd killed or
//! frozen), a writer through the multi-host DSN and a writability probe on every member,
//! and the invariants checked after every fault:
//!
//! - every fault heals within the deadline: exactly one leader, every other member a running
//!   replica streaming on the leader's timeline, a synchronous standby named in the `sync`
//!   key, and the writer acknowledged again;
//! - no acknowledged write is lost (checked on the leader after every heal and at the end);
//! - no probe round sees two members accepting writes, except while the leader's agent is
//!   frozen (no fencing yet, issue 13), which is counted separately.

pub mod fault;
pub mod report;

use fault::{plan, Fault};
use report::{FaultRecord, SeedReport};

use super::workload::{try_missing_writes, SplitBrainProbe, Writer};
use super::{ClusterOpts, TestCluster};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long bootstrap (and switching synchronous mode on) may take.
const SETUP: Duration = Duration::from_secs(180);

/// Options of one seeded run.
#[derive(Debug, Clone)]
pub struct ChaosOpts {
    /// Seed of the fault plan.
    pub seed: u64,
    /// Number of faults.
    pub faults: usize,
    /// Time a fault has to heal after it is repaired.
    pub heal_deadline: Duration,
    /// Where the member logs of a failed fault are copied.
    pub logs_dir: PathBuf,
}

impl ChaosOpts {
    /// `faults` faults from `seed`, 90 s to heal, logs under `target/chaos-logs`.
    pub fn new(seed: u64, faults: usize) -> ChaosOpts {
        ChaosOpts {
            seed,
            faults,
            heal_deadline: Duration::from_secs(90),
            logs_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/chaos-logs")),
        }
    }
}

/// Runs the faults of `o.seed` on a fresh cluster (ttl 10, loop_wait 1, retry_timeout 3).
/// A fault that never heals ends the run (the rest of the plan is not injected).
pub async fn run_seed(o: &ChaosOpts) -> SeedReport {
    let mut c = TestCluster::start("chaos", ClusterOpts::default()).await;
    let li = c.wait_healthy(SETUP).await;
    c.patch_config(li, r#"{"synchronous_mode": true}"#).await;
    let writer = Writer::start(&c).await;
    let probe = SplitBrainProbe::start(&c);
    let mut leader = wait_healed(
        &c,
        &writer,
        &HealGoal::after(0, None),
        SETUP,
        &mut String::new(),
    )
    .await
    .map(|(i, _)| i)
    .expect("the cluster is healthy in synchronous mode before the first fault");
    let mut rep = SeedReport::new(o.seed);
    for (k, f) in plan(o.seed, o.faults, c.opts.ttl).iter().enumerate() {
        let (rec, healed) = one_fault(&mut c, &writer, f, k, leader, o, &rep).await;
        eprintln!(
            "  -> {} to {}, healed {}",
            rec.kind.name(),
            rec.target,
            rec.heal
                .map_or("NEVER".into(), |h| format!("in {:.2} s", h.as_secs_f64()))
        );
        rep.faults.push(rec);
        match healed {
            Some(li) => leader = li,
            None => {
                rep.aborted = true;
                break;
            }
        }
    }
    finish(&c, writer, probe, &mut rep, o).await;
    rep
}

/// Injects, repairs and waits for one fault to heal; checks for lost writes.
async fn one_fault(
    c: &mut TestCluster,
    writer: &Writer,
    f: &Fault,
    k: usize,
    leader: usize,
    o: &ChaosOpts,
    rep: &SeedReport,
) -> (FaultRecord, Option<usize>) {
    eprintln!(
        "seed {} fault {k}: {} hold {} s ({} leads)",
        o.seed,
        f.kind.name(),
        f.hold.as_secs(),
        c.nodes[leader].name
    );
    let a = fault::apply(c, f, leader).await;
    let repaired = Instant::now();
    let goal = HealGoal::after(writer.acked_so_far(), a.killed_postmaster);
    let mut rec = FaultRecord::new(o.seed, k, f, a, repaired);
    let healed = wait_healed(c, writer, &goal, o.heal_deadline, &mut rec.waited_for).await;
    if let Some((_, at)) = healed {
        rec.heal = Some(at - repaired);
        rec.healed_at = Some(at);
    } else {
        rec.note(&format!(
            "not healed within {} s of the repair",
            o.heal_deadline.as_secs()
        ));
        rec.state = Some(cluster_state(c).await);
        rec.logs = report::save_logs(c, &o.logs_dir, o.seed, k, f.kind);
        c.dump_logs();
    }
    let mut leader = healed.map(|(li, _)| li);
    if leader.is_none() {
        let t = Instant::now();
        leader = operator_repair(c, writer, o).await;
        rec.operator_repair = leader.map(|_| t.elapsed());
    }
    if let Some(li) = leader {
        match try_missing_writes(c, li, &writer.acked_ids_so_far()).await {
            Some(m) => rec.lost = rep.new_losses(m),
            None => rec.note("could not read the writes table on the leader"),
        }
    }
    if !rec.lost.is_empty() && rec.logs.is_none() {
        rec.logs = report::save_logs(c, &o.logs_dir, o.seed, k, f.kind);
    }
    (rec, leader)
}

/// After a fault that did not heal, what an operator would do: restart (kill -9, start) the
/// agent of every member not holding the leader key, then wait for the heal again. The fault
/// stays a failure; the run goes on if this heals it.
async fn operator_repair(c: &mut TestCluster, writer: &Writer, o: &ChaosOpts) -> Option<usize> {
    let leader = c.leader().await;
    for i in 0..c.nodes.len() {
        if leader.as_deref() != Some(c.nodes[i].name.as_str()) {
            c.kill_agent(i);
            c.start_agent(i);
        }
    }
    let goal = HealGoal::after(writer.acked_so_far(), None);
    let healed = wait_healed(c, writer, &goal, o.heal_deadline, &mut String::new()).await;
    healed.map(|(li, _)| li)
}

/// What "healed" must see beyond the cluster's shape, so a state read before the fault took
/// effect does not count.
#[derive(Debug, Clone)]
pub struct HealGoal {
    /// Writes acknowledged at the repair: the writer must get one more through.
    pub acked_at: usize,
    /// Unix second of the repair: every agent must have read the DCS after it.
    pub since_unix: u64,
    /// A killed postmaster (member, pid) that must have been replaced by a new one.
    pub killed_postmaster: Option<(usize, i32)>,
}

impl HealGoal {
    /// The goal for a fault repaired now.
    pub fn after(acked_at: usize, killed_postmaster: Option<(usize, i32)>) -> HealGoal {
        let since_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        HealGoal {
            acked_at,
            since_unix,
            killed_postmaster,
        }
    }
}

/// Polls [`healed`] until it holds (returns the leader and when) or `deadline` passes.
/// `waited_for` gets the last condition that was not met (the slowest one).
pub async fn wait_healed(
    c: &TestCluster,
    writer: &Writer,
    goal: &HealGoal,
    deadline: Duration,
    waited_for: &mut String,
) -> Option<(usize, Instant)> {
    let end = Instant::now() + deadline;
    loop {
        match healed(c, writer, goal).await {
            Ok(li) => return Some((li, Instant::now())),
            Err(why) => *waited_for = why,
        }
        if Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The healed state: the writer acknowledged a write after the repair, a killed postmaster
/// was replaced, the leader key's holder answers `/primary` 200, every other member is a
/// running replica streaming on the leader's timeline, every agent read the DCS after the
/// repair, and the `sync` key names this leader and one of the others. Err says what is not.
pub async fn healed(c: &TestCluster, writer: &Writer, goal: &HealGoal) -> Result<usize, String> {
    if writer.acked_so_far() <= goal.acked_at {
        return Err("a write acknowledged after the repair".into());
    }
    if let Some((i, pid)) = goal.killed_postmaster {
        let restarted = fault::postmaster_pid(c, i).is_some_and(|p| p != pid);
        if !restarted {
            return Err(format!("a new postmaster on {}", c.nodes[i].name));
        }
    }
    let leader = c.leader().await.ok_or("a leader key")?;
    let li = c.index(&leader);
    let lp = patroni(c, li).await.ok_or("the leader's /patroni")?;
    let fresh = |p: &Value| p["dcs_last_seen"].as_u64().unwrap_or(0) > goal.since_unix;
    if lp["role"] != "primary" || !fresh(&lp) || c.code(li, "/primary").await != 200 {
        return Err(format!(
            "{leader}: primary, /primary 200, DCS read after the repair"
        ));
    }
    let timeline = lp["timeline"].as_u64();
    for i in (0..c.nodes.len()).filter(|&i| i != li) {
        let name = &c.nodes[i].name;
        let p = match c.nodes[i].agent {
            Some(_) => patroni(c, i).await.unwrap_or_default(),
            None => Value::Null,
        };
        if p["role"] != "replica" || p["state"] != "running" || !fresh(&p) {
            return Err(format!(
                "{name}: running replica, DCS read after the repair"
            ));
        }
        if p["replication_state"] != "streaming" || p["timeline"].as_u64() != timeline {
            return Err(format!("{name}: streaming on timeline {timeline:?}"));
        }
    }
    let sync = c.key_json("sync").await.unwrap_or_default();
    let standby = sync["sync_standby"].as_str().unwrap_or_default();
    let named = c
        .nodes
        .iter()
        .any(|n| n.name == standby && n.name != leader);
    if sync["leader"] != leader.as_str() || !named {
        return Err(format!("sync key naming {leader} and a standby"));
    }
    Ok(li)
}

/// A member's `/patroni` document (None when it does not answer).
async fn patroni(c: &TestCluster, i: usize) -> Option<Value> {
    let (_, body) = c.get(i, "/patroni").await?;
    serde_json::from_str(&body).ok()
}

/// The leader key, the sync key and every member's `/patroni`, for a fault that did not heal.
async fn cluster_state(c: &TestCluster) -> String {
    let mut s = format!(
        "leader key: {:?}; sync key: {}",
        c.leader().await,
        c.key_json("sync")
            .await
            .map_or("none".into(), |v| v.to_string())
    );
    for (i, n) in c.nodes.iter().enumerate() {
        let p = patroni(c, i)
            .await
            .map_or("no answer".into(), |v| v.to_string());
        s.push_str(&format!("\n  {} /patroni: {p}", n.name));
        s.push_str(&format!(
            "\n  {} postgres: {}",
            n.name,
            pg_state(c, i).await
        ));
    }
    s
}

/// Recovery, timeline, WAL positions and the WAL receiver of member `i`, from SQL.
async fn pg_state(c: &TestCluster, i: usize) -> String {
    const Q: &str = "SELECT concat_ws(' ', 'in_recovery=' || pg_is_in_recovery(), \
        'checkpoint_tl=' || (SELECT timeline_id FROM pg_control_checkpoint()), \
        'receive=' || pg_last_wal_receive_lsn(), 'replay=' || pg_last_wal_replay_lsn(), \
        'current=' || CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END, \
        'receiver=' || (SELECT status || ' tl ' || received_tli || ' ' || \
            coalesce(sender_host, '') || ':' || coalesce(sender_port::text, '') \
            FROM pg_stat_wal_receiver), \
        'primary_conninfo=' || (regexp_match(current_setting('primary_conninfo'), \
            'host=\\S+'))[1] || ' ' || (regexp_match(current_setting('primary_conninfo'), \
            'port=\\S+'))[1])";
    match c.query_one(i, Q).await {
        Some(v) => v,
        None => "no answer".into(),
    }
}

/// Stops the writer and the probe, checks every acknowledged write on the leader once more,
/// and gives every probe violation to the fault in whose window it was seen.
async fn finish(
    c: &TestCluster,
    writer: Writer,
    probe: SplitBrainProbe,
    rep: &mut SeedReport,
    o: &ChaosOpts,
) {
    let seen = probe.violations_so_far();
    rep.rounds = probe.rounds();
    let _ = probe.stop().await;
    let report = writer.stop().await;
    rep.acked = report.acked.len();
    let end = Instant::now();
    for r in rep.faults.iter_mut() {
        r.write_gap = report::gap_within(&report.ack_times, r.started, r.healed_at.unwrap_or(end));
    }
    rep.assign_violations(&seen);
    let li = writable_leader(c, Duration::from_secs(30)).await;
    let missing = match li {
        Some(li) => try_missing_writes(c, li, &report.acked).await,
        None => None,
    };
    match missing {
        Some(m) => {
            let lost = rep.new_losses(m);
            if let Some(last) = rep.faults.last_mut() {
                last.lost.extend(lost);
            }
        }
        None => rep.final_check = Some("no writable leader to check the writes on".into()),
    }
    let failed = rep
        .faults
        .iter()
        .position(|r| r.failed() && r.logs.is_none());
    if let Some(k) = failed {
        let kind = rep.faults[k].kind;
        rep.faults[k].logs = report::save_logs(c, &o.logs_dir, o.seed, k, kind);
    }
}

/// The leader key's holder once it accepts writes (None after `timeout`).
async fn writable_leader(c: &TestCluster, timeout: Duration) -> Option<usize> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        let li = c
            .leader()
            .await
            .and_then(|l| c.nodes.iter().position(|n| n.name == l));
        if let Some(li) = li {
            let s = c.sql(li).await;
            if let Some(s) = s {
                let ro = s.query_one("SELECT pg_is_in_recovery()", &[]).await;
                if matches!(ro.map(|r| r.get::<_, bool>(0)), Ok(false)) {
                    return Some(li);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}
