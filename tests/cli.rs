//! Issue: the operator CLI on a real 3-member cluster — list/topology formats, edit-config,
//! switchover/failover, restart --pending, scheduled restart + flush, reinit --wait, query,
//! dsn, remove — and every command refusing to hang without a terminal.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// Runs `patronus -c <m1 config> ARGS` without a terminal (stdin from `input`).
fn cli(c: &TestCluster, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .arg("-c")
        .arg(&c.nodes[0].config)
        .args(args)
        .env("PATRONUS_MIN_TTL", "5")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run patronus");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait patronus")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Replaces volatile values (sysid, ports, LSNs, lags, widths) so a table can be compared.
fn normalise(table: &str, sysid: &str) -> String {
    let mut t = table.replace(sysid, "SYSID");
    let re_lsn = |s: &str| {
        s.split(' ')
            .map(|w| {
                let is_lsn = w.contains('/')
                    && w.split('/')
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit()));
                if is_lsn {
                    "LSN"
                } else if w.starts_with("127.0.0.1:") {
                    "HOST"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    t = t.lines().map(re_lsn).collect::<Vec<_>>().join("\n");
    let mut prev = '\0';
    let mut collapsed = String::new();
    for ch in t.chars() {
        if (ch == ' ' || ch == '-') && ch == prev {
            continue;
        }
        collapsed.push(ch);
        prev = ch;
    }
    collapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_on_a_real_cluster() {
    let opts = ClusterOpts {
        rest_auth: Some(("admin".into(), "pw".into())),
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("cli", opts).await;
    let li = c.wait_healthy(T).await;
    let leader = c.nodes[li].name.clone();
    let scope = c.scope.clone();
    let sysid = c
        .etcd
        .get_prefix(&format!("/service/{scope}/initialize"))
        .await[0]
        .1
        .clone();

    // list: pretty table (snapshot with volatile fields normalised) and the machine formats.
    // Lag is volatile (a WAL record shows until the replica's next report): poll until the
    // table itself shows the steady state, then compare.
    let lag = "0";
    // Tags show because every member has one (`role: it` from the harness).
    let mut expected = vec![format!("+ Cluster: {scope} (SYSID) -+-+-+-+-+-+-+")];
    expected.push(
        "| Member | Host | Role | State | TL | Receive LSN | Lag | Replay LSN | Lag | Tags |"
            .into(),
    );
    expected.push("+-+-+-+-+-+-+-+-+-+-+".into());
    for n in &c.nodes {
        if n.name == leader {
            expected.push(format!(
                "| {} | HOST | Leader | running | 1 | | | | | role: it |",
                n.name
            ));
        } else {
            expected.push(format!(
                "| {} | HOST | Replica | streaming | 1 | LSN | {lag} | LSN | {lag} | role: it |",
                n.name
            ));
        }
    }
    expected.push("+-+-+-+-+-+-+-+-+-+-+".into());
    let deadline = std::time::Instant::now() + T;
    let (o, got) = loop {
        let o = cli(&c, &["list"], "");
        let got = normalise(&out(&o), &sysid);
        if got.trim_end() == expected.join("\n") || std::time::Instant::now() > deadline {
            break (o, got);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(got.trim_end(), expected.join("\n"), "raw:\n{}", out(&o));
    let o = cli(&c, &["list", "-f", "json"], "");
    let rows: Value = serde_json::from_str(&out(&o)).expect("json list");
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert_eq!(rows[li]["Role"], "Leader");
    let o = cli(&c, &["list", "-f", "tsv"], "");
    let tsv = out(&o);
    assert!(
        tsv.lines()
            .next()
            .unwrap()
            .starts_with("Cluster\tMember\tHost\tRole\tState\tTL"),
        "{tsv}"
    );
    assert_eq!(tsv.lines().count(), 4);
    let o = cli(&c, &["list", "-f", "yaml"], "");
    assert!(
        out(&o).contains(&format!("Member: {leader}")),
        "{}",
        out(&o)
    );
    let o = cli(&c, &["topology"], "");
    assert!(
        out(&o).contains("+ m"),
        "replicas nested under the leader: {}",
        out(&o)
    );

    // dsn and query.
    let o = cli(&c, &["dsn"], "");
    assert_eq!(
        out(&o).trim(),
        format!("host=127.0.0.1 port={}", c.nodes[li].pg_port)
    );
    let o = cli(
        &c,
        &["query", "-r", "replica", "-c", "SELECT pg_is_in_recovery()"],
        "",
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "pg_is_in_recovery\nt\n");

    // edit-config: an invalid edit is refused before writing; a valid one reaches every member.
    let o = cli(&c, &["edit-config", "-s", "loop_wait=50", "--force"], "");
    assert!(!o.status.success());
    assert!(err(&o).contains("loop_wait"), "{}", err(&o));
    let o = cli(&c, &["edit-config", "-p", "work_mem=9MB"], "");
    assert!(
        !o.status.success(),
        "no --force and no terminal must refuse"
    );
    assert!(err(&o).contains("--force"), "{}", err(&o));
    let cfg = cli(&c, &["show-config"], "");
    assert!(!out(&cfg).contains("9MB"), "nothing written");
    let o = cli(&c, &["edit-config", "-p", "work_mem=9MB", "--force"], "");
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("+    work_mem: 9MB"),
        "diff shown: {}",
        out(&o)
    );
    for i in 0..3 {
        wait_for("work_mem 9MB everywhere", T, || async {
            (c.query_one(i, "SHOW work_mem").await? == "9MB").then_some(())
        })
        .await;
    }
    let o = cli(&c, &["edit-config", "-p", "work_mem=9MB", "--force"], "");
    assert_eq!(out(&o).trim(), "Not changed");

    // restart --pending restarts exactly the members with a pending restart and clears it.
    let o = cli(
        &c,
        &["edit-config", "-p", "shared_buffers=24MB", "--force"],
        "",
    );
    assert!(o.status.success(), "{}", err(&o));
    wait_for("pending restart on every member", T, || async {
        let o = cli(&c, &["list", "-f", "json"], "");
        let rows: Value = serde_json::from_str(&out(&o)).ok()?;
        rows.as_array()?
            .iter()
            .all(|r| r["Pending restart"] == "*")
            .then_some(())
    })
    .await;
    let (_, body) = c.get(li, "/patroni").await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["pending_restart_reason"]["shared_buffers"]["new_value"], "24MB",
        "{v}"
    );
    let o = cli(&c, &["restart", &scope, "--pending", "--force"], "");
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert_eq!(
        out(&o).matches("Success: restart on member").count(),
        3,
        "{}",
        out(&o)
    );
    for i in 0..3 {
        wait_for("shared_buffers 24MB", T, || async {
            (c.query_one(i, "SHOW shared_buffers").await? == "24MB").then_some(())
        })
        .await;
    }
    wait_for("pending flags cleared", T, || async {
        let o = cli(&c, &["list", "-f", "json"], "");
        let rows: Value = serde_json::from_str(&out(&o)).ok()?;
        rows.as_array()?
            .iter()
            .all(|r| r.get("Pending restart").is_none())
            .then_some(())
    })
    .await;
    // Nothing pending now: --pending restarts nobody.
    let o = cli(&c, &["restart", &scope, "--pending", "--force"], "");
    assert!(!o.status.success());
    assert!(
        out(&o).contains("restart conditions are not satisfied"),
        "{}",
        out(&o)
    );

    // Scheduled restart: shown, flushed; another runs at its time.
    let replica = c.nodes[(li + 1) % 3].name.clone();
    let ri = c.index(&replica);
    let far = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let o = cli(
        &c,
        &["restart", &scope, &replica, "--scheduled", &far, "--force"],
        "",
    );
    assert!(
        out(&o).contains("Success: restart scheduled on member"),
        "{}{}",
        out(&o),
        err(&o)
    );
    // Published in the member key by the (immediately woken) next loop of that member.
    wait_for("the scheduled restart in list", T, || async {
        let rows: Value = serde_json::from_str(&out(&cli(&c, &["list", "-f", "json"], ""))).ok()?;
        rows[ri]["Scheduled restart"].is_string().then_some(())
    })
    .await;
    let o = cli(&c, &["flush", &scope, &replica, "restart", "--force"], "");
    assert!(
        out(&o).contains("Success: flush scheduled restart"),
        "{}",
        out(&o)
    );
    let before = c
        .query_one(ri, "SELECT pg_postmaster_start_time()::text")
        .await
        .unwrap();
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(8)).to_rfc3339();
    let o = cli(
        &c,
        &["restart", &scope, &replica, "--scheduled", &soon, "--force"],
        "",
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        c.query_one(ri, "SELECT pg_postmaster_start_time()::text")
            .await
            .unwrap(),
        before,
        "not before its time"
    );
    wait_for("the scheduled restart", T, || async {
        let now = c
            .query_one(ri, "SELECT pg_postmaster_start_time()::text")
            .await?;
        (now != before).then_some(())
    })
    .await;

    // reinit --wait re-clones a replica.
    let o = cli(&c, &["reinit", &scope, &replica, "--wait", "--force"], "");
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains(&format!("Reinitialize is completed on: {replica}")),
        "{}",
        out(&o)
    );

    // switchover and failover move the leader.
    c.wait_healthy(T).await;
    let o = cli(&c, &["switchover", "--candidate", &replica], "");
    assert!(!o.status.success(), "no terminal, no --force: refused");
    let o = cli(&c, &["switchover", "--candidate", &replica, "--force"], "");
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains(&format!("Successfully switched over to \"{replica}\"")),
        "{}",
        out(&o)
    );
    assert_eq!(c.leader().await.as_deref(), Some(replica.as_str()));
    c.wait_healthy(T).await;
    let o = cli(&c, &["failover", "--candidate", &leader, "--force"], "");
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert_eq!(c.leader().await.as_deref(), Some(leader.as_str()));
    let o = cli(&c, &["failover", "--candidate", "nosuch", "--force"], "");
    assert!(!o.status.success());
    c.wait_healthy(T).await;

    // history shows the two switches once the new leader has published it
    // (the leader writes the history key in the cycle after promotion).
    let h = wait_for("two history entries", T, || async {
        let o = cli(&c, &["history", "-f", "json"], "");
        let h: Value = serde_json::from_str(&out(&o)).ok()?;
        (h.as_array().map(Vec::len) == Some(2)).then_some(h)
    })
    .await;
    let last = &h.as_array().unwrap()[1];
    assert_eq!(last["New Leader"], Value::from(leader.as_str()), "{h}");

    // remove: refused without the confirmations, done with them.
    let o = cli(&c, &["remove", &scope], "");
    assert!(!o.status.success(), "EOF on stdin aborts");
    let o = cli(&c, &["remove", &scope], &format!("{scope}\nYes I am\n"));
    assert!(!o.status.success());
    assert!(
        !c.etcd
            .get_prefix(&format!("/service/{scope}/"))
            .await
            .is_empty(),
        "nothing removed yet"
    );
    let leader_now = c.leader().await.unwrap();
    // Stop the agents first, or the leader would re-create its keys at once.
    for i in 0..3 {
        c.kill_agent(i);
    }
    let o = cli(
        &c,
        &["remove", &scope],
        &format!("{scope}\nYes I am aware\n{leader_now}\n"),
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        c.etcd
            .get_prefix(&format!("/service/{scope}/"))
            .await
            .is_empty(),
        "every key removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_keeps_a_dead_primary_down_and_resume_restores_failover() {
    let mut c = TestCluster::start("pause", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let o = cli(&c, &["pause", "--wait"], "");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "Success: cluster management is paused");
    let o = cli(&c, &["list"], "");
    assert!(out(&o).contains(" Maintenance mode: on"), "{}", out(&o));
    let o = cli(&c, &["pause"], "");
    assert!(!o.status.success(), "already paused");
    let leader = c.nodes[li].name.clone();
    c.kill_agent(li);
    c.kill_postmaster(li);
    // Well past ttl: nobody takes over while paused.
    let ttl = Duration::from_secs(c.opts.ttl);
    let deadline = std::time::Instant::now() + ttl * 2;
    while std::time::Instant::now() < deadline {
        for i in (0..3).filter(|&i| i != li) {
            assert_eq!(c.code(i, "/primary").await, 503, "no failover while paused");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let o = cli(&c, &["resume", "--wait"], "");
    assert!(o.status.success(), "{}", err(&o));
    let new = wait_for("a new leader after resume", T, || async {
        c.leader().await.filter(|l| *l != leader)
    })
    .await;
    assert_ne!(new, leader);
}
