//! Fencing on a real cluster: a frozen leader agent (SIGSTOP for 2×ttl) cannot keep a
//! writable primary past its lease — the userspace fence kills PostgreSQL first — and the
//! same holds after the fence itself was killed -9 (the agent starts a new one).

mod common;

use common::workload::{missing_writes, SplitBrainProbe, Writer};
use common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

/// Pids of `patronus fence` processes guarding member `i` (found by their socket path).
fn fence_pids(c: &TestCluster, i: usize) -> Vec<i32> {
    let socket = c
        .dir
        .join(format!("patronus-fence-{}.sock", c.nodes[i].name));
    let needle = socket.to_string_lossy().into_owned();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|raw| {
                let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
                cmd.contains(" fence ") && cmd.contains(&needle)
            })
        })
        .collect()
}

/// Freezes the leader's agent for 2×ttl; returns (seconds until the old primary stopped
/// accepting writes, seconds until another member was writable).
async fn freeze_leader_agent(c: &TestCluster, li: usize) -> (f64, f64) {
    let ttl = Duration::from_secs(c.opts.ttl);
    let old = c.nodes[li].name.clone();
    c.stop_agent(li);
    let frozen = Instant::now();
    wait_for(
        "the frozen leader's primary to stop accepting writes",
        T,
        || async { (c.writable(li).await != Some(true)).then_some(()) },
    )
    .await;
    let fenced = frozen.elapsed();
    let ni = wait_for("another member to lead and accept writes", T, || async {
        let leader = c.leader().await.filter(|l| *l != old)?;
        let ni = c.index(&leader);
        (c.writable(ni).await == Some(true)).then_some(ni)
    })
    .await;
    let promoted = frozen.elapsed();
    assert!(
        fenced < promoted,
        "the old primary stopped after the new one accepted writes"
    );
    assert!(
        fenced < ttl,
        "the old primary accepted writes {fenced:?} after its agent froze (ttl {ttl:?})"
    );
    assert!(
        c.log_text(li)
            .contains("fence: the leader lease deadline passed without renewal"),
        "the fence says why it stopped PostgreSQL"
    );
    tokio::time::sleep((ttl * 2).saturating_sub(frozen.elapsed())).await; // fault length
    c.cont_agent(li);
    let healthy = c.wait_healthy(T).await;
    assert_eq!(healthy, ni, "the new leader stays");
    (fenced.as_secs_f64(), promoted.as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_agent_never_leaves_two_writable_primaries() {
    let c = TestCluster::start("fence", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let writer = Writer::start(&c).await;
    let probe = SplitBrainProbe::start(&c);
    wait_for("the leader's fence to run and be armed", T, || async {
        (!fence_pids(&c, li).is_empty() && c.log_text(li).contains("fence armed")).then_some(())
    })
    .await;
    let (fenced, promoted) = freeze_leader_agent(&c, li).await;
    println!(
        "agent frozen: old primary fenced after {fenced:.1} s, new primary after {promoted:.1} s"
    );

    // The fence of the new leader killed -9: the agent starts another one and keeps fencing.
    let li = c.wait_healthy(T).await;
    let killed = fence_pids(&c, li);
    assert!(!killed.is_empty(), "the new leader runs a fence");
    let armed_before = c.log_text(li).matches("fence armed").count();
    for pid in &killed {
        signal_pid(*pid as u32, nix::sys::signal::Signal::SIGKILL);
    }
    wait_for("the agent to start a new fence", T, || async {
        let now = fence_pids(&c, li);
        (!now.is_empty() && now.iter().all(|p| !killed.contains(p))).then_some(())
    })
    .await;
    wait_for("the agent to arm the new fence", T, || async {
        (c.log_text(li).matches("fence armed").count() > armed_before).then_some(())
    })
    .await;
    let log = c.log_text(li);
    assert!(log.contains("started the fence"));
    assert!(
        // At once when the fence's socket closes; or by the arm of a cycle under way then.
        log.contains("the fence went away while armed")
            || log.contains("the fence stopped answering"),
        "the agent noticed the dead fence"
    );
    assert!(
        log.contains("fence listening, armed ("),
        "a fence started for a running primary is armed from birth"
    );
    let (fenced, promoted) = freeze_leader_agent(&c, li).await;
    println!("after a fence kill: old primary fenced after {fenced:.1} s, new primary after {promoted:.1} s");

    let report = writer.stop().await;
    let rounds = probe.rounds();
    let violations = probe.stop().await;
    assert!(rounds > 100, "the probe ran ({rounds} rounds)");
    assert!(
        violations.is_empty(),
        "two members accepted writes: {violations:?}"
    );
    let li = c.wait_leader_writable(T).await;
    let missing = missing_writes(&c, li, &report.acked).await;
    println!(
        "{} writes acknowledged, {} not on the final leader (asynchronous replication)",
        report.acked.len(),
        missing.len()
    );
}

/// `watchdog.mode: required` on a machine without a watchdog device: that member never
/// takes the leader lock — not at bootstrap, not when the leader dies — and says why in its
/// log, in `/patroni` and under `patronus list`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_required_watchdog_is_missing_never_leads() {
    assert!(
        !std::path::Path::new("/dev/watchdog").exists(),
        "this test needs a machine without /dev/watchdog"
    );
    let opts = ClusterOpts {
        members: 2,
        tags: vec![
            "watchdog:\n  mode: required\n  device: /dev/watchdog\n".into(),
            String::new(),
        ],
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("wdog", opts).await;
    let li = c.wait_healthy(T).await;
    assert_eq!(c.nodes[li].name, "m2", "m1 cannot lead, so m2 bootstrapped");
    let (_, body) = c.get(0, "/patroni").await.expect("/patroni of m1");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["watchdog_failed"], true, "{v}");
    assert!(
        v["fence_problem"]
            .as_str()
            .unwrap_or("")
            .contains("/dev/watchdog"),
        "{v}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patronus"))
        .arg("-c")
        .arg(&c.nodes[1].config)
        .arg("list")
        .output()
        .expect("patronus list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Not a leader candidate: m1: watchdog required"),
        "{text}"
    );
    // The leader dies: m1 stays a replica and the cluster has no leader.
    c.kill_agent(li);
    c.kill_postmaster(li);
    let ttl = Duration::from_secs(c.opts.ttl);
    wait_for("the dead leader's key to expire", T, || async {
        c.leader().await.is_none().then_some(())
    })
    .await;
    let expired = Instant::now();
    wait_for("m1 to say why it does not take over", T, || async {
        c.log_text(0)
            .contains("I cannot fence a primary")
            .then_some(())
    })
    .await;
    while expired.elapsed() < ttl {
        assert!(c.leader().await.is_none(), "m1 took the lock");
        assert!(c.writable(0).await != Some(true), "m1 accepts writes");
        tokio::time::sleep(Duration::from_millis(500)).await; // observation period
    }
}
