//! Issue #14: secrets never leave the node. A 2-member cluster, the reconciler committing back
//! to a desired repository and posting drift events to a local webhook receiver. Three unique
//! marker passwords: one put into `primary_conninfo` with `ALTER SYSTEM` on the replica, one
//! sent in a parameter through `PATCH /config` (refused with 400), one written straight into
//! the DCS behind everyone's back (an operator with etcdctl). None of them may appear in any
//! etcd key (the last one excepted: the operator put it there), in the repository's history,
//! in the agent or reconciler logs, in the reconciler's `GET /status` or in a webhook body.
//! Each negative check has a positive control (a harmless setting changed the same way that
//! does show up), so that "absent" means "filtered", not "not looked at yet".

mod common;

use common::git::{commit, start_reconciler_with};
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// Every key and value of the etcd cluster (all keys, not only the namespace), as one text.
async fn etcd_dump(c: &TestCluster) -> String {
    let mut client = etcd_client::Client::connect([format!("http://{}", c.etcd.endpoint())], None)
        .await
        .expect("connect etcd");
    let r = client
        .get("", Some(etcd_client::GetOptions::new().with_all_keys()))
        .await
        .expect("range over every key");
    assert!(!r.kvs().is_empty(), "the etcd dump reads every key");
    r.kvs()
        .iter()
        .map(|kv| {
            format!(
                "{} = {}\n",
                String::from_utf8_lossy(kv.key()),
                String::from_utf8_lossy(kv.value())
            )
        })
        .collect()
}

/// Writes the dynamic config straight into etcd (what `etcdctl put` would do).
async fn put_config_behind_our_back(c: &TestCluster, value: &Value) {
    let mut client = etcd_client::Client::connect([format!("http://{}", c.etcd.endpoint())], None)
        .await
        .expect("connect etcd");
    client
        .put(
            format!("/service/{}/config", c.scope),
            value.to_string(),
            None,
        )
        .await
        .expect("put config");
}

/// `git log -p --all` of the repository.
fn git_history(dir: &std::path::Path) -> String {
    let out = Command::new("git")
        .args(["log", "-p", "--all"])
        .current_dir(dir)
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git log: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes the desired repository: one cluster managing work_mem; drift is alerted.
fn desired_repo(c: &TestCluster, hook: &str) -> std::path::PathBuf {
    let dir = temp_dir("secrepo");
    git2::Repository::init(&dir).unwrap();
    std::fs::write(
        dir.join("patronus.yaml"),
        format!("dcs:\n  etcd3:\n    hosts: [\"{}\"]\n  namespace: /service\ndrift:\n  default: alert\nnotify:\n  webhooks:\n    - url: {hook}\n", c.etcd.endpoint()),
    )
    .unwrap();
    let file = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 8MB\n",
    )
    .unwrap();
    commit(dir.as_path(), "initial desired state");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marker_passwords_appear_nowhere() {
    patronus::tls::install_provider();
    let c = TestCluster::start(
        "sec",
        ClusterOpts {
            members: 2,
            ..Default::default()
        },
    )
    .await;
    let li = c.wait_healthy(T).await;
    let ri = 1 - li;
    let tag = c.etcd.port;
    let alter_marker = format!("MkAlter{tag}xQ");
    let patch_marker = format!("MkPatch{tag}xQ");
    let dcs_marker = format!("MkDcs{tag}xQ");

    let (hook, bodies) = common::webhook::receiver(|body| body).await;
    let repo = desired_repo(&c, &hook);
    let status_port = free_port();
    let _daemon = start_reconciler_with(&c.dir, &repo, status_port, &[("RUST_LOG", "debug")]);
    for i in 0..2 {
        wait_for("the desired state applied", T, || async {
            (c.query_one(i, "SHOW work_mem").await? == "8MB").then_some(())
        })
        .await;
    }

    // 1. PATCH /config with a secret parameter: refused, naming the parameter. A harmless one
    //    is accepted and becomes a drift event (control).
    let body = format!(
        r#"{{"postgresql":{{"parameters":{{"restore_command":"PGPASSWORD={patch_marker} pg_receivewal %f %p"}}}}}}"#
    );
    let (code, text) = c.send(li, reqwest::Method::PATCH, "/config", &body).await;
    assert_eq!(code, 400, "a secret in PATCH /config is refused: {text}");
    assert!(
        text.contains("postgresql.parameters.restore_command") && text.contains("secret"),
        "the refusal names the parameter and the reason: {text}"
    );
    assert!(
        !text.contains(&patch_marker),
        "the refusal does not echo it"
    );
    c.patch_config(li, r#"{"postgresql":{"parameters":{"work_mem":"9MB"}}}"#)
        .await;
    wait_for("the PATCH control drift webhook", T, || async {
        bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains("postgresql.parameters.work_mem") && b.contains("9MB"))
            .then_some(())
    })
    .await;

    // 2. ALTER SYSTEM on the replica: a secret conninfo and, as control, cpu_tuple_cost (sorted
    //    before it, so that without the filter the secret would be the last drift reported).
    let s = c.sql(ri).await.expect("replica SQL");
    let conninfo = format!(
        "host=127.0.0.1 port={} user=replicator password={alter_marker}",
        c.nodes[li].pg_port
    );
    for q in [
        format!("ALTER SYSTEM SET primary_conninfo = '{conninfo}'"),
        "ALTER SYSTEM SET cpu_tuple_cost = 0.02".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        s.batch_execute(&q).await.unwrap();
    }
    let control = format!("members.{}.alter_system.cpu_tuple_cost", c.nodes[ri].name);
    wait_for("the ALTER SYSTEM control drift webhook", T, || async {
        bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains(&control))
            .then_some(())
    })
    .await;

    // 3. A secret written straight into the DCS: observed.yaml must carry it redacted.
    let kv = c.key_json("config").await.expect("config key");
    let mut cfg = kv.clone();
    cfg["postgresql"]["parameters"]["archive_command"] =
        Value::String(format!("PGPASSWORD={dcs_marker} true"));
    put_config_behind_our_back(&c, &cfg).await;
    let observed = format!("status/{}/observed.yaml", c.scope);
    wait_for(
        "observed.yaml committed with archive_command",
        T,
        || async {
            let h = git_history(&repo);
            (h.contains(&observed) && h.contains("archive_command") && h.contains("cpu_tuple_cost"))
                .then_some(())
        },
    )
    .await;
    let status = http_get_url(&format!("http://127.0.0.1:{status_port}/status"))
        .await
        .expect("reconciler GET /status")
        .1;

    // plan output (text, markdown, JSON) against the live cluster.
    let mut plans = String::new();
    for format in ["text", "markdown", "json"] {
        let out = Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["plan", "--format", format, "--repo"])
            .arg(&repo)
            .output()
            .expect("run patronus plan");
        plans.push_str(&String::from_utf8_lossy(&out.stdout));
        plans.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let plan_sees_it = plans.contains("archive_command");

    // Nothing carries the markers.
    let etcd = etcd_dump(&c).await;
    let history = git_history(&repo);
    let redacted = history.contains("archive_command: PGPASSWORD=***");

    let reconcile_log = std::fs::read_to_string(c.dir.join("reconcile.log")).unwrap();
    let agent_logs = c.log_text(0) + &c.log_text(1);
    let hooks = bodies.lock().unwrap().join("\n");
    let places: [(&str, &str, &[&str]); 7] = [
        (
            "plan output",
            &plans,
            &[&alter_marker, &patch_marker, &dcs_marker],
        ),
        ("etcd", &etcd, &[&alter_marker, &patch_marker]),
        (
            "git log -p --all",
            &history,
            &[&alter_marker, &patch_marker, &dcs_marker],
        ),
        (
            "reconciler log",
            &reconcile_log,
            &[&alter_marker, &patch_marker, &dcs_marker],
        ),
        (
            "agent logs",
            &agent_logs,
            &[&alter_marker, &patch_marker, &dcs_marker],
        ),
        (
            "GET /status",
            &status,
            &[&alter_marker, &patch_marker, &dcs_marker],
        ),
        (
            "webhook bodies",
            &hooks,
            &[&alter_marker, &patch_marker, &dcs_marker],
        ),
    ];
    let mut leaks = Vec::new();
    for (place, text, markers) in places {
        for m in markers {
            if text.contains(m) {
                leaks.push(format!("{m} in {place}"));
            }
        }
    }
    if !leaks.is_empty() {
        c.dump_logs();
    }
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
    // Controls: the harmless settings changed the same ways do show up.
    assert!(
        redacted,
        "observed.yaml keeps the setting, redacted:\n{history}"
    );
    assert!(plan_sees_it, "plan shows the live config:\n{plans}");
    assert!(
        status.contains(&control),
        "status shows the last drift: {status}"
    );
    assert!(
        etcd.contains("cpu_tuple_cost"),
        "control: the override is published"
    );
}
