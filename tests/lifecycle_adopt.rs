//! Issue #16 item 6: taking over an installation built without patronus — a plain primary
//! (`initdb`, `pg_ctl start`, rows) and a `pg_basebackup -R` standby. The standby's agent,
//! started first, waits and never promotes (no leader, no `initialize` key); the primary's
//! agent adopts its instance (same system identifier, rows intact, no initdb); the standby
//! joins without being re-cloned (a marker file in its data directory survives) and streams
//! from the leader with patronus' own `primary_conninfo` (the one `-R` left in
//! `postgresql.auto.conf` is removed) — real etcd, PostgreSQL 15 and the real binary.

mod common;

use common::{wait_for, ClusterOpts, TestCluster, PG_BIN, SUPERPASS};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(90);

/// Runs a PostgreSQL program as the postgres OS user; panics with its output on failure.
fn as_postgres(program: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (runuser, PostgreSQL 15 needed): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open conf");
    f.write_all(text.as_bytes()).expect("append conf");
}

/// A primary on member 0's port and a `pg_basebackup -R` standby on member 1's, with rows.
async fn build_plain_pair(c: &TestCluster) {
    let (d1, d2) = (&c.nodes[0].data_dir, &c.nodes[1].data_dir);
    let pw = c.dir.join("pw");
    std::fs::write(&pw, format!("{SUPERPASS}\n")).expect("pwfile");
    let d1s = d1.display().to_string();
    as_postgres(
        "initdb",
        &[
            "-D",
            &d1s,
            "-U",
            "postgres",
            "--pwfile",
            &pw.display().to_string(),
            "-A",
            "scram-sha-256",
        ],
    );
    let conf = |port: u16| {
        format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n",
            c.dir.display()
        )
    };
    append(&d1.join("postgresql.conf"), &conf(c.nodes[0].pg_port));
    append(
        &d1.join("pg_hba.conf"),
        "host replication all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
    );
    let log1 = c.dir.join("plain-m1.log").display().to_string();
    as_postgres("pg_ctl", &["-D", &d1s, "-l", &log1, "-w", "start"]);
    let db = c.sql(0).await.expect("connect to the plain primary");
    db.batch_execute(
        "CREATE ROLE replicator REPLICATION LOGIN PASSWORD 'replpass';
         CREATE ROLE rewinder LOGIN PASSWORD 'rewindpass';
         CREATE TABLE kept(i int); INSERT INTO kept SELECT generate_series(1, 1000);",
    )
    .await
    .expect("roles and rows");
    let pgpass = c.dir.join("pgpass-build");
    std::fs::write(&pgpass, format!("*:*:*:postgres:{SUPERPASS}\n")).expect("pgpass");
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_basebackup")])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &c.nodes[0].pg_port.to_string(),
            "-U",
            "postgres",
        ])
        .args([
            "-D",
            &d2.display().to_string(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ])
        .env("PGPASSWORD", SUPERPASS)
        .output()
        .expect("run pg_basebackup");
    assert!(
        out.status.success(),
        "pg_basebackup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let auto = std::fs::read_to_string(d2.join("postgresql.auto.conf")).unwrap_or_default();
    assert!(
        auto.contains("primary_conninfo"),
        "-R wrote primary_conninfo: {auto}"
    );
    append(&d2.join("postgresql.conf"), &conf(c.nodes[1].pg_port));
    std::fs::write(d2.join("MARKER"), "built by hand").expect("marker");
    let log2 = c.dir.join("plain-m2.log").display().to_string();
    as_postgres(
        "pg_ctl",
        &["-D", &d2.display().to_string(), "-l", &log2, "-w", "start"],
    );
}

async fn sysid(c: &TestCluster, i: usize) -> Option<String> {
    c.query_one(i, "SELECT system_identifier::text FROM pg_control_system()")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_adopt_a_plain_primary_and_standby() {
    let opts = ClusterOpts {
        members: 2,
        ..Default::default()
    };
    let mut c = TestCluster::prepare("lifeadopt", opts).await;
    build_plain_pair(&c).await;
    let before = sysid(&c, 0).await.expect("primary sysid");
    assert_eq!(sysid(&c, 1).await.as_deref(), Some(before.as_str()));

    // The standby's agent first: several loops without a leader key and still in recovery.
    c.start_agent(1);
    wait_for(
        "the standby's agent to publish its member key",
        T,
        || async { c.key_json("members/m2").await.map(|_| ()) },
    )
    .await;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(
            c.query_one(1, "SELECT pg_is_in_recovery()::text")
                .await
                .as_deref(),
            Some("true"),
            "the standby was promoted"
        );
        assert!(
            c.leader().await.is_none(),
            "the standby's agent took the leader key"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        c.log_text(1)
            .contains("No initialize key in DCS and PostgreSQL is running as replica"),
        "Patroni's guard line: {}",
        c.log_text(1)
    );

    // The primary's agent adopts its instance; the standby follows it.
    c.start_agent(0);
    wait_for("m1 to lead", T, || async {
        (c.leader().await.as_deref() == Some("m1")).then_some(())
    })
    .await;
    let streaming = "SELECT count(*)::text FROM pg_stat_replication WHERE application_name = 'm2' AND state = 'streaming'";
    wait_for(
        "m2 streaming from m1 with patronus' conninfo",
        T,
        || async { (c.query_one(0, streaming).await.as_deref() == Some("1")).then_some(()) },
    )
    .await;
    c.wait_healthy(T).await;
    let init = c
        .etcd
        .get_prefix(&format!("/service/{}/initialize", c.scope))
        .await
        .into_iter()
        .map(|(_, v)| v)
        .next();
    assert_eq!(
        init.as_deref(),
        Some(before.as_str()),
        "initialize = the adopted sysid"
    );
    assert_eq!(sysid(&c, 0).await.as_deref(), Some(before.as_str()));
    assert_eq!(sysid(&c, 1).await.as_deref(), Some(before.as_str()));
    for i in [0, 1] {
        assert_eq!(
            c.query_one(i, "SELECT count(*)::text FROM kept")
                .await
                .as_deref(),
            Some("1000"),
            "rows intact on m{}",
            i + 1
        );
    }
    assert!(
        c.nodes[1].data_dir.join("MARKER").exists(),
        "m2 was re-cloned"
    );
    let auto = std::fs::read_to_string(c.nodes[1].data_dir.join("postgresql.auto.conf"))
        .unwrap_or_default();
    assert!(
        !auto.contains("primary_conninfo"),
        "foreign conninfo removed: {auto}"
    );
    assert!(
        !c.log_text(0).contains("initdb"),
        "no initdb on the adopted primary"
    );
}
