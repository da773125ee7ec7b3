//! Issue 13 item 4: etcd with three members. Every node file lists all three endpoints.
//! Losing one member — killed (etcd's Raft leader, then a follower) or frozen for 2×ttl —
//! changes nothing in the PostgreSQL cluster: same leader, same timeline, no history entry,
//! writes acknowledged, and `patronus list` / `plan` / `apply` keep working. Losing the
//! quorum is an outage: the primary stops accepting writes before ttl, and once the members
//! are back one leader takes writes again. No two writable members at any time.

mod common;

use common::workload::{missing_writes, SplitBrainProbe, Writer};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

/// What must not change while one etcd member is lost.
struct Baseline {
    leader: String,
    li: usize,
    timeline: Option<u64>,
}

/// A fault window, for the writer's longest gap in it.
struct Window {
    what: String,
    from: Instant,
    to: Instant,
}

/// The unix time (seconds) now.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Member `i`'s `/patroni` document.
async fn patroni(c: &TestCluster, i: usize) -> Value {
    let (_, body) = c.get(i, "/patroni").await.expect("/patroni answers");
    serde_json::from_str(&body).expect("/patroni is JSON")
}

/// Waits until every agent has read the DCS after `since` (unix seconds).
async fn wait_every_member_saw_dcs(c: &TestCluster, since: u64) {
    for i in 0..c.nodes.len() {
        wait_for(
            &format!("{} to read the DCS after {since}", c.nodes[i].name),
            T,
            || async move {
                let p = patroni(c, i).await;
                (p["dcs_last_seen"].as_u64().unwrap_or(0) > since).then_some(())
            },
        )
        .await;
    }
}

/// Runs the real binary with `args` and `env`; returns its output and how long it took.
fn patronus_env(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let started = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .args(args)
        .envs(env.iter().copied())
        .env("PATRONUS_MIN_TTL", "5")
        .output()
        .expect("run patronus");
    (o, started.elapsed())
}

/// [`patronus_env`] without extra variables.
fn patronus(args: &[&str]) -> (Output, Duration) {
    patronus_env(args, &[])
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `patronus -c <node file> list` twice, then `patronus list <scope>` with the endpoints
/// from `PATRONI_ETCD3_HOSTS` (each run starts on the first endpoint); every run must
/// succeed and show the leader. Returns the slowest run.
fn list_works(c: &TestCluster, b: &Baseline) -> Duration {
    let config = c.nodes[0].config.to_str().expect("utf-8 path").to_string();
    let home = c.dir.to_str().expect("utf-8 path").to_string();
    let hosts = c.etcd.endpoints();
    let env = [
        ("PATRONI_ETCD3_HOSTS", hosts.as_str()),
        ("HOME", home.as_str()),
    ];
    let mut slowest = Duration::ZERO;
    for run in 0..3 {
        let (o, took) = if run < 2 {
            patronus(&["-c", &config, "list", "-f", "json"])
        } else {
            patronus_env(&["list", &c.scope, "-f", "json"], &env)
        };
        assert!(o.status.success(), "patronus list failed: {}", text(&o));
        let rows: Vec<Value> = serde_json::from_slice(&o.stdout).expect("list -f json");
        let leader = rows.iter().find(|r| r["Role"] == "Leader");
        assert_eq!(
            leader.and_then(|r| r["Member"].as_str()),
            Some(b.leader.as_str()),
            "{}",
            text(&o)
        );
        slowest = slowest.max(took);
    }
    slowest
}

/// A GitOps repository whose `patronus.yaml` lists every etcd endpoint.
fn gitops_repo(c: &TestCluster) -> PathBuf {
    let dir = temp_dir("repo");
    git2::Repository::init(&dir).expect("git init");
    let hosts: Vec<String> = (0..c.etcd.len())
        .map(|i| format!("\"{}\"", c.etcd.member(i).endpoint()))
        .collect();
    std::fs::write(
        dir.join("patronus.yaml"),
        format!(
            "dcs:\n  etcd3:\n    hosts: [{}]\n  namespace: /service\n",
            hosts.join(", ")
        ),
    )
    .expect("write patronus.yaml");
    dir
}

/// Sets `work_mem` in the repository, then `plan` (exit 2: changes) and `apply` (exit 0)
/// with the real binary; returns the slowest of the two.
fn plan_and_apply(c: &TestCluster, repo: &Path, work_mem: &str) -> Duration {
    let file = repo.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &file,
        format!("config:\n  postgresql:\n    parameters:\n      work_mem: {work_mem}\n"),
    )
    .expect("write cluster.yaml");
    common::git::commit(repo, &format!("work_mem {work_mem}"));
    let dir = repo.to_str().expect("utf-8 path");
    let (o, plan_took) = patronus(&["plan", "--repo", dir]);
    assert_eq!(o.status.code(), Some(2), "plan: {}", text(&o));
    assert!(text(&o).contains("work_mem"), "plan: {}", text(&o));
    let (o, apply_took) = patronus(&["apply", "--repo", dir]);
    assert_eq!(o.status.code(), Some(0), "apply: {}", text(&o));
    plan_took.max(apply_took)
}

/// Waits until every member runs `work_mem` = `v` (the agents read the new configuration
/// through the members still up).
async fn wait_work_mem(c: &TestCluster, v: &str) {
    for i in 0..c.nodes.len() {
        wait_for(&format!("work_mem {v} on member {i}"), T, || async move {
            (c.query_one(i, "SHOW work_mem").await? == v).then_some(())
        })
        .await;
    }
}

/// The leader key, the leader's timeline and role, and the `history` key are what they
/// were; the writer got a write through after `since`.
async fn assert_unchanged(c: &TestCluster, b: &Baseline, writer: &Writer, what: &str) {
    let acked = writer.acked_so_far();
    wait_for(&format!("a write acknowledged after {what}"), T, || {
        let more = writer.acked_so_far() > acked;
        async move { more.then_some(()) }
    })
    .await;
    let now_leader = c.leader().await;
    let p = patroni(c, b.li).await;
    if now_leader.as_deref() != Some(b.leader.as_str()) || p["timeline"].as_u64() != b.timeline {
        c.dump_logs();
    }
    assert_eq!(
        now_leader.as_deref(),
        Some(b.leader.as_str()),
        "{what}: leader moved"
    );
    assert_eq!(
        p["timeline"].as_u64(),
        b.timeline,
        "{what}: timeline changed"
    );
    assert_eq!(p["role"], "primary", "{what}: the leader is no primary");
    // The leader writes an empty `history` list at bootstrap; a timeline switch adds a line.
    let history = c
        .etcd
        .get_prefix(&format!("/service/{}/history", c.scope))
        .await;
    let lines: Vec<Value> = history
        .iter()
        .flat_map(|(_, v)| serde_json::from_str::<Vec<Value>>(v).expect("history is a list"))
        .collect();
    assert!(
        lines.is_empty(),
        "{what}: a history entry was written: {history:?}"
    );
}

/// etcd's Raft leader (`leader`) or one of its followers (preferring the one the primary's
/// agent talks to).
async fn etcd_member(c: &TestCluster, b: &Baseline, leader: bool) -> usize {
    let raft_leader = wait_for("etcd to have a Raft leader", T, || c.etcd.leader_member()).await;
    if leader {
        return raft_leader;
    }
    let in_use = member_in_use(c, b.li);
    if in_use != raft_leader {
        return in_use;
    }
    (0..c.etcd.len())
        .find(|&i| i != raft_leader)
        .expect("a follower")
}

/// The etcd member agent `i` talks to: the first endpoint, or the one its log last says it
/// moved to (`… moving to http://host:port`).
fn member_in_use(c: &TestCluster, i: usize) -> usize {
    let log = c.log_text(i);
    let Some(line) = log.lines().rev().find(|l| l.contains("moving to http://")) else {
        return 0;
    };
    let url = line.rsplit("moving to http://").next().unwrap_or_default();
    let endpoint = url.split_whitespace().next().unwrap_or_default();
    (0..c.etcd.len())
        .find(|&k| c.etcd.member(k).endpoint() == endpoint)
        .unwrap_or_else(|| panic!("no etcd member at {endpoint} ({line})"))
}

/// (a) One member killed: the Raft leader, then a follower. Each time: `patronus list` and
/// plan/apply work while it is down, and after a few cycles nothing changed.
async fn kill_one_member(
    c: &mut TestCluster,
    b: &Baseline,
    w: &Writer,
    repo: &Path,
) -> Vec<Window> {
    let mut windows = Vec::new();
    for (leader, work_mem) in [(true, "5MB"), (false, "6MB")] {
        let k = etcd_member(c, b, leader).await;
        let what = format!(
            "etcd {} (member {}) killed",
            if leader { "leader" } else { "follower" },
            k + 1
        );
        let since = unix_now();
        let from = Instant::now();
        c.etcd.kill_member(k);
        let list = list_works(c, b);
        let gitops = plan_and_apply(c, repo, work_mem);
        wait_work_mem(c, work_mem).await;
        // A few loop cycles after the kill: a demotion it caused would have happened.
        wait_every_member_saw_dcs(c, since + 3).await;
        assert_unchanged(c, b, w, &what).await;
        println!(
            "{what}: confirmed unchanged after {:.1} s; slowest list {:.2} s, plan/apply {:.2} s",
            from.elapsed().as_secs_f64(),
            list.as_secs_f64(),
            gitops.as_secs_f64()
        );
        windows.push(Window {
            what,
            from,
            to: Instant::now(),
        });
        c.etcd.restart_member(k).await;
    }
    windows
}

/// (b) The member the primary's agent talks to frozen for 2×ttl.
async fn freeze_one_member(c: &mut TestCluster, b: &Baseline, w: &Writer, repo: &Path) -> Window {
    let ttl = Duration::from_secs(c.opts.ttl);
    let k = member_in_use(c, b.li);
    let raft_leader = c.etcd.leader_member().await;
    let what = format!(
        "etcd member {} (the primary's agent's; Raft leader: {}) frozen for 2×ttl",
        k + 1,
        raft_leader == Some(k)
    );
    let since = unix_now();
    let from = Instant::now();
    c.etcd.freeze_member(k);
    let list = list_works(c, b);
    let gitops = plan_and_apply(c, repo, "7MB");
    wait_work_mem(c, "7MB").await;
    tokio::time::sleep((ttl * 2).saturating_sub(from.elapsed())).await; // the fault's length
    wait_every_member_saw_dcs(c, since + 2 * c.opts.ttl).await;
    assert_unchanged(c, b, w, &what).await;
    c.etcd.thaw_member(k);
    let to = Instant::now();
    wait_every_member_saw_dcs(c, unix_now()).await;
    assert_unchanged(c, b, w, &format!("{what}, thawed")).await;
    println!(
        "{what}: unchanged; slowest list {:.2} s, plan/apply {:.2} s",
        list.as_secs_f64(),
        gitops.as_secs_f64()
    );
    Window { what, from, to }
}

/// (c) Two members killed: the primary stops accepting writes before ttl; both restarted:
/// one leader takes writes again and the cluster is healthy.
async fn lose_quorum(c: &mut TestCluster, b: &Baseline, w: &Writer) {
    let ttl = Duration::from_secs(c.opts.ttl);
    let survivor = etcd_member(c, b, false).await;
    let lost: Vec<usize> = (0..c.etcd.len()).filter(|&i| i != survivor).collect();
    for &k in &lost {
        c.etcd.kill_member(k);
    }
    let t0 = Instant::now();
    wait_for("the primary to stop accepting writes", T, || async {
        (c.writable(b.li).await != Some(true)).then_some(())
    })
    .await;
    let stopped = t0.elapsed();
    assert!(stopped < ttl, "demoted after {stopped:?}, ttl is {ttl:?}");
    for &k in &lost {
        c.etcd.restart_member(k).await;
    }
    let back = Instant::now();
    let acked = w.acked_so_far();
    let li = c.wait_leader_writable(T).await;
    wait_for("writes acknowledged again", T, || {
        let more = w.acked_so_far() > acked;
        async move { more.then_some(()) }
    })
    .await;
    let writes_back = back.elapsed();
    c.wait_healthy(T).await;
    println!(
        "quorum lost (members {:?} killed): primary stopped accepting writes after {:.2} s \
         (ttl {} s); after the restart {} leads, writes back after {:.2} s, healthy after {:.2} s",
        lost.iter().map(|k| k + 1).collect::<Vec<_>>(),
        stopped.as_secs_f64(),
        ttl.as_secs(),
        c.nodes[li].name,
        writes_back.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_etcd_loses_one_member_without_effect_and_quorum_like_an_outage() {
    let opts = ClusterOpts {
        etcd_members: 3,
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("e3", opts).await;
    let li = c.wait_healthy(T).await;
    let b = Baseline {
        leader: c.nodes[li].name.clone(),
        li,
        timeline: patroni(&c, li).await["timeline"].as_u64(),
    };
    let repo = gitops_repo(&c);
    let writer = Writer::start(&c).await;
    let probe = SplitBrainProbe::start(&c);
    let mut windows = kill_one_member(&mut c, &b, &writer, &repo).await;
    windows.push(freeze_one_member(&mut c, &b, &writer, &repo).await);
    let acked = writer.acked_ids_so_far();
    let missing = missing_writes(&c, li, &acked).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    let logs: Vec<String> = (0..c.nodes.len()).map(|i| c.log_text(i)).collect();
    let count = |needle: &str| {
        logs.iter()
            .map(|l| l.matches(needle).count())
            .sum::<usize>()
    };
    println!(
        "one member lost: the agents moved to another etcd member {} times",
        count("moving to")
    );
    assert_eq!(
        count("failed to update leader lock"),
        0,
        "the leader missed a lock update with one etcd member lost"
    );
    lose_quorum(&mut c, &b, &writer).await;
    let report = writer.stop().await;
    let violations = probe.stop().await;
    for win in &windows {
        println!(
            "{}: longest write gap {:.3} s",
            win.what,
            report.max_gap_between(win.from, win.to).as_secs_f64()
        );
    }
    println!(
        "{} writes acknowledged, {} writer errors",
        report.acked.len(),
        report.errors
    );
    assert!(
        violations.is_empty(),
        "two writable members: {violations:?}"
    );
    let _ = std::fs::remove_dir_all(&repo);
}
