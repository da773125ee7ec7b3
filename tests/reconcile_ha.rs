//! Issue #17 item 2: two reconcilers on one remote repository (file://). One is active for the
//! cluster (it holds `gitops-lock`); the other observes and says who is active. The active one
//! runs a declared switchover, then is killed with SIGKILL in the middle of a rolling restart
//! (3 members, a restart-requiring parameter); the survivor takes over within the lock ttl,
//! finishes the wave without restarting any member twice (postmaster start times and the
//! running `shared_buffers` sampled throughout; the old primary's demotion is its restart), never runs the switchover again, keeps committing status, and `history.yaml`
//! holds no duplicate event.

mod common;

use common::git::{git, spawn_reconciler, Daemon};
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);
const LOCK_TTL: u64 = 4;

/// Commits everything in the user's clone and pushes it (rebasing over status commits).
fn push(user: &Path, msg: &str) {
    assert!(git(user, &["add", "-A"]));
    assert!(git(user, &["commit", "-qm", msg]));
    for _ in 0..50 {
        if git(user, &["push", "-q", "origin", "main"]) {
            return;
        }
        git(user, &["pull", "-q", "--rebase", "origin", "main"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("could not push '{msg}'");
}

/// A file of the remote's main branch.
fn remote_file(origin: &Path, rel: &str) -> Option<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(origin)
        .args(["show", &format!("main:{rel}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn reconciler(id: &str, base: &Path, origin: &Path, port: u16) -> (Daemon, PathBuf) {
    let log = base.join(format!("{id}.log"));
    let (ttl, listen) = (LOCK_TTL.to_string(), format!("127.0.0.1:{port}"));
    let work = base.join(format!("work-{id}"));
    let repo_url = format!("file://{}", origin.display());
    let args = [
        "--id",
        id,
        "--lock-ttl",
        &ttl,
        "--fetch-interval",
        "1",
        "--listen",
        &listen,
        "--workdir",
        work.to_str().unwrap(),
        "--repo",
        &repo_url,
    ];
    (spawn_reconciler(&log, args, &[]), log)
}

async fn raw(c: &TestCluster, k: &str) -> Option<String> {
    let key = format!("/service/{}/{k}", c.scope);
    let kv = c.etcd.get_prefix(&key).await;
    kv.into_iter().find(|(n, _)| *n == key).map(|(_, v)| v)
}

async fn gitops(c: &TestCluster) -> Value {
    let v = raw(c, "gitops").await.unwrap_or_default();
    serde_json::from_str(&v).unwrap_or(Value::Null)
}

/// Per member: each postmaster start time seen, with the `shared_buffers` it ran.
type Starts = Mutex<BTreeMap<usize, BTreeSet<(String, String)>>>;

/// Records each member's postmaster start time and the `shared_buffers` it runs (a member
/// restarted twice shows three start times).
async fn sample(c: &TestCluster, starts: &Starts) {
    for i in 0..3 {
        let sql =
            "SELECT pg_postmaster_start_time()::text || '|' || current_setting('shared_buffers')";
        if let Some(row) = c.query_one(i, sql).await {
            if let Some((t, sb)) = row.split_once('|') {
                let seen = (t.to_string(), sb.to_string());
                starts.lock().unwrap().entry(i).or_default().insert(seen);
            }
        }
    }
}

/// Each member was started at most once more during the wave (its restart, or for the old
/// primary its demotion), and never again once it ran the new value.
fn assert_restarted_once(starts: &Starts, new_value: &str) {
    for (i, seen) in starts.lock().unwrap().iter() {
        let times: BTreeSet<&String> = seen.iter().map(|(t, _)| t).collect();
        let on_new: BTreeSet<&String> = seen
            .iter()
            .filter(|(_, sb)| sb == new_value)
            .map(|(t, _)| t)
            .collect();
        assert!(
            times.len() <= 2,
            "member {i} was started more than once during the wave: {seen:?}"
        );
        assert!(
            on_new.len() <= 1,
            "member {i} was started again while it already ran shared_buffers {new_value}: {seen:?}"
        );
        println!("member {i}: {seen:?}");
    }
}

fn yaml(shared_buffers: &str) -> String {
    format!(
        "config:\n  postgresql:\n    parameters:\n      work_mem: 8MB\n      shared_buffers: {shared_buffers}\n\
         restart_policy: rolling\nmaintenance_windows:\n  - \"Daily 00:00-24:00 UTC\"\n"
    )
}

async fn status(port: u16) -> Option<Value> {
    let (_, body) = http_get_url(&format!("http://127.0.0.1:{port}/status")).await?;
    serde_json::from_str(&body).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_one_active_and_a_survivor_finishes_the_wave() {
    which("git").expect("git is installed (ci/install-deps.sh)");
    let c = TestCluster::start("rha", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let first_leader = c.nodes[li].name.clone();
    let base = temp_dir("rha");
    let origin = base.join("origin.git");
    let o = origin.to_str().unwrap();
    assert!(git(&base, &["init", "-q", "--bare", "-b", "main", o]));
    let user = base.join("user");
    assert!(git(&base, &["clone", "-q", o, user.to_str().unwrap()]));
    assert!(git(&user, &["checkout", "-q", "-b", "main"]));
    std::fs::write(
        user.join("patronus.yaml"),
        format!("dcs:\n  etcd3:\n    hosts: [\"{}\"]\n", c.etcd.endpoint()),
    )
    .unwrap();
    let dir = user.join(format!("clusters/{}", c.scope));
    std::fs::create_dir_all(dir.join("ops")).unwrap();
    std::fs::write(dir.join("cluster.yaml"), yaml("16MB")).unwrap();
    std::fs::write(
        dir.join("ops/sw1.yaml"),
        "type: switchover\nreason: ha test\n",
    )
    .unwrap();
    push(&user, "initial desired state and a switchover");

    // A starts first and becomes the active reconciler; B observes.
    let (pa, pb) = (free_port(), free_port());
    let (mut rec_a, log_a) = reconciler("rec-a", &base, &origin, pa);
    wait_for("rec-a holds the lock", T, || async {
        (raw(&c, "gitops-lock").await? == "rec-a").then_some(())
    })
    .await;
    let (_rec_b, log_b) = reconciler("rec-b", &base, &origin, pb);
    wait_for("the switchover run by rec-a", T, || async {
        (gitops(&c).await["ops"]["sw1"]["state"] == "done").then_some(())
    })
    .await;
    let after_sw = c.wait_healthy(T).await;
    assert_ne!(c.nodes[after_sw].name, first_leader);
    let b_view = wait_for("rec-b's /status names rec-a as active", T, || async {
        let v = status(pb).await?;
        let e = &v["clusters"][c.scope.as_str()];
        (e["active_reconciler"] == "rec-a" && e["active_here"] == false).then_some(v)
    })
    .await;
    assert_eq!(b_view["reconciler_id"], "rec-b");
    let lb = std::fs::read_to_string(&log_b).unwrap();
    assert!(
        !lb.contains("applied commit") && !lb.contains("operation sw1"),
        "the standby applied or ran something: {lb}"
    );

    // A restart-requiring change: kill -9 the active one once the wave is under way.
    let starts: Starts = Mutex::new(BTreeMap::new());
    sample(&c, &starts).await;
    std::fs::write(dir.join("cluster.yaml"), yaml("24MB")).unwrap();
    push(&user, "shared_buffers 24MB");
    wait_for("a wave step recorded by rec-a", T, || async {
        sample(&c, &starts).await;
        gitops(&c)
            .await
            .get("wave")
            .filter(|w| !w.is_null())
            .map(|_| ())
    })
    .await;
    rec_a.0.kill().unwrap(); // SIGKILL: no lock release, no final commit
    let _ = rec_a.0.wait();
    let killed = Instant::now();
    wait_for("rec-b takes over", T, || async {
        sample(&c, &starts).await;
        (raw(&c, "gitops-lock").await? == "rec-b").then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    assert!(
        // The lease expires within the ttl; a standby tries every second (and each poll
        // here also samples three members, so the figure lands late on a loaded machine).
        takeover <= Duration::from_secs(LOCK_TTL + 6),
        "took over in {takeover:?} with a {LOCK_TTL} s lock ttl"
    );

    // The survivor finishes the wave; no member restarted twice.
    wait_for("the wave finished everywhere", T, || async {
        sample(&c, &starts).await;
        for i in 0..3 {
            (c.query_one(i, "SHOW shared_buffers").await? == "24MB").then_some(())?;
        }
        gitops(&c).await.get("wave").is_none().then_some(())
    })
    .await;
    c.wait_healthy(T).await;
    sample(&c, &starts).await;
    // The primary is switched over first: its demotion (stop, start as a replica) is its
    // restart, and the wave does not restart it once more.
    assert_restarted_once(&starts, "24MB");

    // The switchover ran once: one timeline for it, one for the wave's switchover at most.
    let g = gitops(&c).await;
    assert_eq!(g["ops"]["sw1"]["state"], "done", "{g}");
    let lb = std::fs::read_to_string(&log_b).unwrap();
    assert!(!lb.contains("running operation sw1"), "run again: {lb}");
    let la = std::fs::read_to_string(&log_a).unwrap();
    assert!(
        la.contains("running operation sw1"),
        "rec-a ran the switchover: {la}"
    );

    // Status commits continue from rec-b; no event twice in the history.
    let rel = format!("status/{}/history.yaml", c.scope);
    // rec-a was killed before its next commit-back: the switchover's outcome reaches the
    // history from the DCS record, through rec-b.
    let h = wait_for(
        "rec-b's wave events and sw1's outcome pushed",
        T,
        || async {
            let h = remote_file(&origin, &rel)?;
            (h.matches("event: restart\n").count() >= 3 && h.contains("id: sw1")).then_some(h)
        },
    )
    .await;
    let events: Vec<Value> =
        serde_json::from_value(patronus::config::yaml::parse_yaml_str(&h).unwrap()).unwrap();
    let mut seen = BTreeSet::new();
    for e in &events {
        assert!(seen.insert(e.to_string()), "duplicate event {e} in {h}");
    }
    let sw_done = events
        .iter()
        .filter(|e| e["id"] == "sw1" && e["state"] == "done")
        .count();
    assert_eq!(sw_done, 1, "{h}");
    let timelines: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "timeline_switch")
        .map(|e| &e["from_timeline"])
        .collect();
    let unique: BTreeSet<String> = timelines.iter().map(|t| t.to_string()).collect();
    assert_eq!(unique.len(), timelines.len(), "{h}");
    println!(
        "rec-b took over {takeover:?} after the SIGKILL; {} events",
        events.len()
    );
}
