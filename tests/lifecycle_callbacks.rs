//! Issue #16: callbacks with Patroni's arguments (`<action> <role> <scope>`), `before_stop`,
//! and a failing `pre_promote` that keeps a member from being promoted — real etcd,
//! PostgreSQL 15 and the real binary.

mod common;

use common::{wait_for, ClusterOpts, TestCluster};
use reqwest::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(90);

/// Writes an executable script (readable and runnable by the postgres user).
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until `path` has the line `want`.
async fn wait_line(path: &Path, want: &str) {
    wait_for(&format!("`{want}` in {}", path.display()), T, || async {
        lines(path).iter().any(|l| l == want).then_some(())
    })
    .await;
}

/// The callback section of member `i`: every callback appends its argv to `cb-m<i>.log`,
/// `before_stop` appends `before_stop`.
fn callbacks_yaml(dir: &Path, name: &str) -> (String, PathBuf) {
    let log = dir.join(format!("cb-{name}.log"));
    let cb = format!("{}/cb.sh {}", dir.display(), log.display());
    let yaml = format!(
        "  callbacks:\n    on_start: {cb}\n    on_stop: {cb}\n    on_restart: {cb}\n    on_reload: {cb}\n    on_role_change: {cb}\n  before_stop: {cb} before_stop\n"
    );
    (yaml, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_receive_action_role_and_scope() {
    let dir = common::temp_dir("cbscripts");
    script(
        &dir.join("cb.sh"),
        "out=\"$1\"; shift\necho \"$*\" >> \"$out\"\n",
    );
    let (y1, log1) = callbacks_yaml(&dir, "m1");
    let (y2, log2) = callbacks_yaml(&dir, "m2");
    // m2 also carries postgresql.recovery_conf: written while it runs as a replica.
    let y2 = format!("{y2}  recovery_conf:\n    recovery_min_apply_delay: 10ms\n");
    let opts = ClusterOpts {
        members: 2,
        postgresql_extra: vec![y1, y2],
        start_agents: Some(1),
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("cb", opts).await;
    let scope = c.scope.clone();
    c.wait_leader_writable(T).await;
    c.start_agent(1);
    let li = c.wait_healthy(T).await;
    assert_eq!(li, 0, "m1 bootstrapped");
    let logs = [log1, log2];

    // on_start after the bootstrap (primary) and after the clone (replica).
    wait_line(&logs[0], &format!("on_start primary {scope}")).await;
    wait_line(&logs[1], &format!("on_start replica {scope}")).await;
    wait_for("recovery_conf applied on the replica", T, || async {
        (c.query_one(1, "SHOW recovery_min_apply_delay")
            .await
            .as_deref()
            == Some("10ms"))
        .then_some(())
    })
    .await;

    // A reloadable change of the dynamic configuration reloads both: on_reload.
    c.patch_config(0, r#"{"postgresql": {"parameters": {"work_mem": "7MB"}}}"#)
        .await;
    wait_line(&logs[0], &format!("on_reload primary {scope}")).await;
    wait_line(&logs[1], &format!("on_reload replica {scope}")).await;

    // A restart of the replica: before_stop, then on_restart.
    let (code, body) = c.send(1, Method::POST, "/restart", "{}").await;
    assert_eq!(code, 200, "{body}");
    wait_line(&logs[1], &format!("on_restart replica {scope}")).await;
    let l = lines(&logs[1]);
    let restart = l.iter().position(|x| x.starts_with("on_restart")).unwrap();
    assert!(
        l[..restart].iter().any(|x| x == "before_stop"),
        "before_stop runs before the restart's stop: {l:?}"
    );
    c.wait_healthy(T).await;

    // Switchover: on_role_change primary on the new leader, replica on the old one.
    let (code, body) = c
        .send(
            0,
            Method::POST,
            "/switchover",
            &json!({"leader": "m1", "candidate": "m2"}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_line(&logs[1], &format!("on_role_change primary {scope}")).await;
    wait_line(&logs[0], &format!("on_role_change replica {scope}")).await;
    assert_eq!(c.wait_healthy(T).await, 1);

    // A clean agent stop of the new primary (the old one may still be rewinding, with
    // PostgreSQL stopped): before_stop, then on_stop with the role it had.
    c.term_agent(1).await;
    wait_line(&logs[1], &format!("on_stop primary {scope}")).await;
    let l = lines(&logs[1]);
    let stop = l.iter().rposition(|x| x.starts_with("on_stop")).unwrap();
    assert_eq!(l[stop - 1], "before_stop", "{l:?}");

    // Every callback line is exactly `<action> <role> <scope>` (Patroni's order).
    for l in logs.iter().flat_map(|p| lines(p)) {
        if l == "before_stop" {
            continue;
        }
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 3, "{l}");
        assert!(f[0].starts_with("on_"), "{l}");
        assert!(["primary", "replica"].contains(&f[1]), "{l}");
        assert_eq!(f[2], scope, "{l}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_pre_promote_keeps_the_member_from_being_promoted() {
    let dir = common::temp_dir("prepromote");
    let record = dir.join("pre.log");
    let allow = dir.join("allow-promote");
    script(
        &dir.join("pre.sh"),
        &format!(
            "echo \"pre_promote $(date +%s.%N)\" >> {rec}\n[ -e {allow} ] && exit 0\nexit 1\n",
            rec = record.display(),
            allow = allow.display()
        ),
    );
    let opts = ClusterOpts {
        members: 2,
        postgresql_extra: vec![
            String::new(),
            format!("  pre_promote: {}/pre.sh\n", dir.display()),
        ],
        start_agents: Some(1),
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("prep", opts).await;
    c.wait_leader_writable(T).await;
    c.start_agent(1);
    assert_eq!(c.wait_healthy(T).await, 0);

    // The leader dies (agent and PostgreSQL): m2 wins the race, its pre_promote fails.
    c.kill_agent(0);
    c.kill_postmaster(0);
    wait_for("a first pre_promote run", T, || async {
        (!lines(&record).is_empty()).then_some(())
    })
    .await;
    // It is tried again only after the ttl back-off, and m2 never runs as a primary.
    let first = Instant::now();
    loop {
        assert_ne!(c.writable(1).await, Some(true), "m2 was promoted");
        if lines(&record).len() >= 2 {
            break;
        }
        assert!(first.elapsed() < T, "pre_promote was not tried again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The back-off measured by the script's own clock (start of each run), not by polling.
    let started: Vec<f64> = lines(&record)
        .iter()
        .filter_map(|l| l.split_once(' ')?.1.parse().ok())
        .collect();
    assert!(
        started.len() >= 2 && started[1] - started[0] >= 9.0,
        "second attempt only after the ttl (10 s) back-off: {started:?}"
    );
    let log = c.log_text(1);
    assert!(
        log.contains("Promotion cancelled because the pre-promote script failed"),
        "{log}"
    );
    // The key m2 holds while its script runs is released when the script fails.
    wait_for(
        "m2 releases the leader key after a failed pre_promote",
        T,
        || async { (c.leader().await.as_deref() != Some("m2")).then_some(()) },
    )
    .await;
    assert_ne!(c.writable(1).await, Some(true), "m2 was promoted");

    // Once the script succeeds, m2 is promoted.
    std::fs::write(&allow, "").expect("allow");
    wait_for("m2 promoted once pre_promote succeeds", T, || async {
        (c.writable(1).await == Some(true) && c.leader().await.as_deref() == Some("m2"))
            .then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `patronus agent --validate-config` on a node file with these lifecycle settings.
fn validate_node_file(postgresql_lines: &str, bootstrap: &str) -> (bool, String) {
    let dir = common::temp_dir("lcvalidate");
    let file = dir.join("node.yml");
    let yaml = format!(
        "scope: s\nname: n1\nrestapi:\n  listen: 127.0.0.1:8008\netcd3:\n  hosts: 127.0.0.1:2379\n\
         postgresql:\n  listen: 127.0.0.1:5432\n  connect_address: 127.0.0.1:5432\n  data_dir: {}/data\n\
         \x20 authentication:\n    superuser:\n      username: postgres\n    replication:\n      username: rep\n\
         {postgresql_lines}{bootstrap}",
        dir.display()
    );
    std::fs::write(&file, yaml).expect("write node file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patronus"))
        .env_remove("PATRONI_CONFIGURATION")
        .args(["agent", "--validate-config"])
        .arg(&file)
        .output()
        .expect("run patronus");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.success(), text)
}

#[test]
fn lifecycle_settings_are_checked_when_the_file_is_loaded() {
    let (ok, text) = validate_node_file(
        "  callbacks:\n    on_role_change: /vip.sh --iface eth0\n  pre_promote: /fence.sh\n  before_stop: /drain.sh\n  create_replica_methods: [pgbackrest, basebackup]\n  pgbackrest:\n    command: pgbackrest --stanza=main --delta restore\n    keep_data: true\n    no_params: true\n",
        "bootstrap:\n  method: pitr\n  pitr:\n    command: /restore.sh\n    recovery_conf:\n      recovery_target_action: promote\n",
    );
    assert!(ok, "{text}");
    assert!(!text.contains("warning"), "used keys are silent: {text}");

    let (ok, text) = validate_node_file(
        "  callbacks:\n    on_role_change: \"/vip.sh 'eth0\"\n",
        "bootstrap:\n  method: pitr\n",
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("postgresql.callbacks.on_role_change: cannot split"),
        "{text}"
    );
    assert!(
        text.contains("bootstrap.method: 'pitr' needs a bootstrap.pitr section"),
        "{text}"
    );
}
