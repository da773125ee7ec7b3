//! Issue #16 items 3–5: the agent's log in `log.dir` (Patroni's `patroni.log`, its line
//! format, rotated at `file_size` keeping `file_num` files); the live reload of the node file
//! on SIGHUP (`work_mem`, one `pg_hba` line, one `pg_ident` line and a tag applied within one
//! loop, `max_files_per_process` marked pending restart, the log switched to JSON) and
//! `POST /reload` naming what needs a restart; `config_dir` (Debian layout) and
//! `use_unix_socket` — real etcd, PostgreSQL 15 and the real binary.

mod common;

use common::{wait_for, ClusterOpts, TestCluster};
use reqwest::Method;
use std::path::Path;
use std::time::Duration;

const FILE_SIZE: u64 = 700;
const FILE_NUM: usize = 2;

fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Edits member 0's node file: `from` → `to` (the text must be there).
fn edit(c: &TestCluster, from: &str, to: &str) {
    let path = &c.nodes[0].config;
    let text = std::fs::read_to_string(path).expect("read node file");
    assert!(text.contains(from), "`{from}` not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write node file");
}

fn sighup(c: &TestCluster) {
    let pid = c.nodes[0].agent.as_ref().expect("agent running").id();
    common::signal_pid(pid, nix::sys::signal::Signal::SIGHUP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_dir_rotation_and_live_reload() {
    let logs = common::temp_dir("lifeb-logs");
    // The Debian layout: configuration files under <etc>/15/main, data elsewhere.
    let etc = common::temp_dir("lifeb-etc").join("15/main");
    let opts = ClusterOpts {
        members: 1,
        loop_wait: 2,
        postgresql_extra: vec![format!("  pg_hba:\n    - local all all trust\n    - host replication replicator 127.0.0.1/32 scram-sha-256\n    - host all all 127.0.0.1/32 scram-sha-256\n  pg_ident:\n    - basemap root postgres\n  use_unix_socket: true\n  config_dir: {}\n", etc.display())],
        node_extra: vec![format!(
            "log:\n  dir: {}\n  file_size: {FILE_SIZE}\n  file_num: {FILE_NUM}\n",
            logs.display()
        )],
        ..Default::default()
    };
    let c = TestCluster::start("lifeb", opts).await;
    c.wait_leader_writable(Duration::from_secs(90)).await;

    // config_dir: PostgreSQL runs with the files of the config dir.
    let conf = etc.join("postgresql.conf").display().to_string();
    assert_eq!(c.query_one(0, "SHOW config_file").await, Some(conf));
    let hba = etc.join("pg_hba.conf").display().to_string();
    assert_eq!(c.query_one(0, "SHOW hba_file").await, Some(hba));
    let ident = etc.join("pg_ident.conf").display().to_string();
    assert_eq!(c.query_one(0, "SHOW ident_file").await, Some(ident));
    assert!(
        !c.nodes[0].data_dir.join("postgresql.conf").exists(),
        "no postgresql.conf in data_dir"
    );

    // use_unix_socket: the agent's own session comes through the socket (no client address).
    let via_socket = "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'Patroni' AND client_addr IS NULL AND backend_type = 'client backend'";
    wait_for(
        "the agent's session over the Unix socket",
        Duration::from_secs(30),
        || async { (c.query_one(0, via_socket).await.as_deref() != Some("0")).then_some(()) },
    )
    .await;

    // log.dir: Patroni's file name and line format, rotated at file_size keeping file_num.
    let main = logs.join("patroni.log");
    let rotated = logs.join(format!("patroni.log.{FILE_NUM}"));
    // (Polled as a whole: a rotation renames .1 to .2, then the log to .1, then opens a new log.)
    let names = wait_for(
        "the log to rotate twice: patroni.log, patroni.log.1, patroni.log.2",
        Duration::from_secs(60),
        || async {
            let names = log_files(&logs);
            (rotated.exists() && names == ["patroni.log", "patroni.log.1", "patroni.log.2"])
                .then_some(names)
        },
    )
    .await;
    for n in &names {
        let len = std::fs::metadata(logs.join(n)).expect("log file").len();
        assert!(
            len <= FILE_SIZE,
            "{n} has {len} bytes > file_size {FILE_SIZE}"
        );
    }
    let all: String = names
        .iter()
        .map(|n| std::fs::read_to_string(logs.join(n)).unwrap_or_default())
        .collect();
    let patroni_line = all.lines().any(|l| {
        let b = l.as_bytes();
        l.len() > 24
            && b[4] == b'-'
            && b[10] == b' '
            && b[19] == b','
            && l[23..].starts_with(" INFO: ")
    });
    assert!(
        patroni_line,
        "no `YYYY-mm-dd HH:MM:SS,mmm INFO: ` line in the log:\n{all}"
    );

    // Live reload: work_mem, one pg_hba line, a tag and the log settings, then SIGHUP.
    edit(
        &c,
        "    fsync: 'off'\n",
        "    fsync: 'off'\n    work_mem: 7MB\n    max_files_per_process: 1100\n",
    );
    edit(
        &c,
        "    - local all all trust\n",
        "    - local all all trust\n    - host all alice 127.0.0.1/32 scram-sha-256\n",
    );
    edit(&c, "  role: it\n", "  role: it\n  reloaded: v2\n");
    edit(
        &c,
        "  pg_ident:\n",
        "  pg_ident:\n    - opsmap alice postgres\n",
    );
    edit(&c, "  file_size:", "  type: json\n  file_size:");
    sighup(&c);
    let within = Duration::from_secs(2 * 2 + 5);
    wait_for("SHOW work_mem = 7MB", within, || async {
        (c.query_one(0, "SHOW work_mem").await.as_deref() == Some("7MB")).then_some(())
    })
    .await;
    let rule = "SELECT count(*)::text FROM pg_hba_file_rules WHERE 'alice' = ANY(user_name)";
    wait_for(
        "the new pg_hba line in pg_hba_file_rules",
        within,
        || async { (c.query_one(0, rule).await.as_deref() == Some("1")).then_some(()) },
    )
    .await;
    let ident = "SELECT count(*)::text FROM pg_ident_file_mappings WHERE map_name = 'opsmap'";
    wait_for(
        "the new pg_ident line in pg_ident_file_mappings",
        within,
        || async { (c.query_one(0, ident).await.as_deref() == Some("1")).then_some(()) },
    )
    .await;
    // A parameter that needs a restart is marked pending, not applied.
    wait_for(
        "pending_restart for max_files_per_process",
        within,
        || async {
            let (_, body) = c.get(0, "/patroni").await?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let reason = &v["pending_restart_reason"]["max_files_per_process"];
            (v["pending_restart"] == true && reason["new_value"] == "1100").then_some(())
        },
    )
    .await;
    wait_for("the new tag in /patroni", within, || async {
        let (_, body) = c.get(0, "/patroni").await?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["tags"]["reloaded"] == "v2").then_some(())
    })
    .await;
    wait_for("JSON lines with Patroni's field names", within, || async {
        let text = std::fs::read_to_string(&main).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| {
                v["levelname"] == "INFO" && v["asctime"].is_string() && v["message"].is_string()
            })
            .then_some(())
    })
    .await;

    // POST /reload names the keys that need a restart.
    edit(
        &c,
        "restapi:\n  listen: 127.0.0.1:",
        "restapi:\n  listen: 127.0.0.2:",
    );
    let (code, body) = c.send(0, Method::POST, "/reload", "").await;
    assert_eq!(code, 202, "{body}");
    assert!(
        body.contains("restapi.listen"),
        "reload reply names restapi.listen: {body}"
    );
    let all: String = log_files(&logs)
        .iter()
        .map(|n| std::fs::read_to_string(logs.join(n)).unwrap_or_default())
        .collect();
    assert!(
        all.contains("restapi.listen need a restart"),
        "a log line names restapi.listen"
    );
    drop(c);
    let _ = std::fs::remove_dir_all(&logs);
    let _ = std::fs::remove_dir_all(etc.parent().and_then(Path::parent).unwrap_or(&etc));
}
