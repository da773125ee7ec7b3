//! Issue #16: replicas created through `postgresql.create_replica_methods` — a custom
//! method script (after a failing one), and pgBackRest from Debian's package as the
//! tutorials do it (archive-push, a full backup, `--delta restore`, archive-get, streaming).
//! Real etcd, PostgreSQL 15 and the real binary.

mod common;

use common::{wait_for, ClusterOpts, TestCluster, PG_BIN};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A command run as the postgres OS user (when we are root).
fn as_postgres(program: &str) -> Command {
    let mut c = Command::new(program);
    if nix::unistd::geteuid().is_root() {
        let u = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("the postgres OS user exists");
        c.uid(u.uid.as_raw()).gid(u.gid.as_raw());
    }
    c.current_dir("/");
    c
}

/// A directory owned by postgres.
fn pg_dir(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).expect("mkdir");
    if let Ok(Some(u)) = nix::unistd::User::from_name("postgres") {
        std::os::unix::fs::chown(path, Some(u.uid.as_raw()), Some(u.gid.as_raw())).expect("chown");
    }
    path.to_path_buf()
}

/// Waits until member `i` streams from the leader (`pg_stat_wal_receiver`).
async fn wait_streaming(c: &TestCluster, i: usize) {
    wait_for("the new member streaming", T, || async {
        let s = c
            .query_one(i, "SELECT status FROM pg_stat_wal_receiver")
            .await?;
        (s == "streaming").then_some(())
    })
    .await;
}

/// Waits until member `i`'s agent log has `text` (a task's outcome is logged when the
/// loop collects it, a moment after its effect is visible).
async fn wait_log(c: &TestCluster, i: usize, text: &str) {
    wait_for(&format!("`{text}` in the log of member {i}"), T, || async {
        c.log_text(i).contains(text).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_method_script_creates_the_replica_after_a_failing_one() {
    let dir = common::temp_dir("clonescript");
    let args = dir.join("clone.args");
    script(
        &dir.join("clone.sh"),
        &format!(
            "echo \"$@\" > {args}\n\
             for a in \"$@\"; do case \"$a\" in --datadir=*) D=${{a#--datadir=}};; --connstring=*) C=${{a#--connstring=}};; esac; done\n\
             {PG_BIN}/pg_basebackup -D \"$D\" -X stream -c fast --no-password -d \"$C\" || exit 1\n\
             echo made-by-clone-script > \"$D/custom_method_marker\"\n",
            args = args.display()
        ),
    );
    let extra = format!(
        "  create_replica_methods:\n    - broken\n    - clone_script\n    - basebackup\n  broken:\n    command: /bin/false\n  clone_script:\n    command: {}/clone.sh\n    label: it test\n",
        dir.display()
    );
    let opts = ClusterOpts {
        members: 2,
        postgresql_extra: vec![String::new(), extra],
        start_agents: Some(1),
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("rmcustom", opts).await;
    c.wait_leader_writable(T).await;
    c.start_agent(1);
    assert_eq!(c.wait_healthy(T).await, 0);
    wait_streaming(&c, 1).await;

    let marker = std::fs::read_to_string(c.nodes[1].data_dir.join("custom_method_marker"));
    assert_eq!(marker.ok().as_deref(), Some("made-by-clone-script\n"));
    let argv = std::fs::read_to_string(&args).expect("the script recorded its arguments");
    assert_eq!(
        argv.trim(),
        format!(
            "--label=it test --scope={} --role=replica --datadir={} --connstring=postgres://replicator@127.0.0.1:{}/postgres",
            c.scope,
            c.nodes[1].data_dir.display(),
            c.nodes[0].pg_port
        )
    );
    assert!(!argv.contains("replpass"), "no password in argv: {argv}");
    let _ = std::fs::remove_dir_all(&dir);
    wait_log(&c, 1, "replica has been created using clone_script from m1").await;
    let log = c.log_text(1);
    assert!(
        log.contains("Error creating replica using method broken"),
        "{log}"
    );
}

/// Writes a pgBackRest configuration for one host (as each host of a tutorial has).
fn pgbackrest_conf(path: &Path, base: &Path, stanza: &str, data: &Path, port: u16, sock: &Path) {
    let text = format!(
        "[global]\nrepo1-path={repo}\nrepo1-retention-full=2\nlog-path={logs}\nlock-path={locks}\n\
         log-level-console=info\nlog-level-file=detail\nstart-fast=y\ncompress-type=none\narchive-timeout=60\n\n\
         [{stanza}]\npg1-path={data}\npg1-port={port}\npg1-socket-path={sock}\npg1-user=postgres\n",
        repo = base.join("repo").display(),
        logs = base.join("log").display(),
        locks = base.join("lock").display(),
        data = data.display(),
        sock = sock.display(),
    );
    std::fs::write(path, text).expect("write pgbackrest.conf");
}

fn pgbackrest(conf: &Path, stanza: &str, args: &[&str]) {
    let out = as_postgres("pgbackrest")
        .arg(format!("--config={}", conf.display()))
        .arg(format!("--stanza={stanza}"))
        .args(args)
        .output()
        .expect("pgbackrest is installed (ci/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "pgbackrest {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbackrest_delta_restore_creates_a_replica_that_replays_then_streams() {
    assert!(
        common::which("pgbackrest").is_some(),
        "pgbackrest is missing: apt-get install pgbackrest (run ci/install-deps.sh)"
    );
    let base = common::temp_dir("pgbr");
    for d in ["repo", "log", "lock"] {
        pg_dir(&base.join(d));
    }
    let stanza = "main";
    let conf1 = base.join("pgbackrest-m1.conf");
    let conf2 = base.join("pgbackrest-m2.conf");
    let m1_params = format!(
        "    archive_mode: 'on'\n    archive_command: 'pgbackrest --config={} --stanza={stanza} archive-push %p'\n",
        conf1.display()
    );
    let m2_method = format!(
        "  create_replica_methods:\n    - pgbackrest\n    - basebackup\n  pgbackrest:\n    command: /usr/bin/pgbackrest --config={} --stanza={stanza} --delta restore\n    keep_data: true\n    no_params: true\n    no_leader: true\n",
        conf2.display()
    );
    let opts = ClusterOpts {
        members: 2,
        postgresql_extra: vec![m1_params, m2_method],
        start_agents: Some(1),
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("rmpgbr", opts).await;
    let sock = c.dir.clone();
    pgbackrest_conf(
        &conf1,
        &base,
        stanza,
        &c.nodes[0].data_dir,
        c.nodes[0].pg_port,
        &sock,
    );
    pgbackrest_conf(
        &conf2,
        &base,
        stanza,
        &c.nodes[1].data_dir,
        c.nodes[1].pg_port,
        &sock,
    );
    c.wait_leader_writable(T).await;

    // The tutorial: stanza, check (archive-push works), rows, a full backup, more WAL.
    pgbackrest(&conf1, stanza, &["stanza-create"]);
    pgbackrest(&conf1, stanza, &["check"]);
    let s = c.sql(0).await.expect("sql to the leader");
    s.batch_execute("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
        .await
        .expect("rows");
    pgbackrest(&conf1, stanza, &["--type=full", "backup"]);
    s.batch_execute("INSERT INTO t SELECT generate_series(1001, 2000); SELECT pg_switch_wal()")
        .await
        .expect("rows after the backup");
    pgbackrest(&conf1, stanza, &["check"]);

    // The new member is created by `pgbackrest --delta restore`, replays, then streams.
    c.start_agent(1);
    assert_eq!(c.wait_healthy(T).await, 0);
    wait_streaming(&c, 1).await;
    wait_log(&c, 1, "replica has been created using pgbackrest from m1").await;
    let pg_log = std::fs::read_to_string(format!("{}.log", c.nodes[1].data_dir.display()))
        .unwrap_or_default();
    assert!(
        pg_log.contains("restored log file"),
        "WAL replayed from restore_command (archive-get): {pg_log}"
    );
    let restore_command = c
        .query_one(1, "SHOW restore_command")
        .await
        .unwrap_or_default();
    assert!(restore_command.contains("archive-get"), "{restore_command}");
    wait_for("all rows on the new member", T, || async {
        let n = c.query_one(1, "SELECT count(*)::text FROM t").await?;
        (n == "2000").then_some(())
    })
    .await;
    custom_bootstrap_restores_the_backup_to_a_point_in_time(&base, stanza).await;

    // The whole cluster is lost (m2 stopped and wiped, m1 killed): once the leader key has
    // expired, m2 restores the backup with its `no_leader` method, replays the archive and
    // wins the race — the cluster is back with every archived row.
    c.term_agent(1).await;
    std::fs::remove_dir_all(&c.nodes[1].data_dir).expect("wipe m2");
    c.kill_agent(0);
    c.kill_postmaster(0);
    wait_for("the leader key to expire", T, || async {
        c.leader().await.is_none().then_some(())
    })
    .await;
    c.start_agent(1);
    wait_for("m2 restored without a leader and promoted", T, || async {
        (c.leader().await.as_deref() == Some("m2") && c.writable(1).await == Some(true))
            .then_some(())
    })
    .await;
    let log = c.log_text(1);
    assert!(
        log.contains("trying to bootstrap (without leader)"),
        "{log}"
    );
    assert!(
        log.contains("replica has been created using pgbackrest (without leader)"),
        "{log}"
    );
    assert_eq!(
        c.query_one(1, "SELECT count(*)::text FROM t")
            .await
            .as_deref(),
        Some("2000")
    );
    drop(c);
    let _ = std::fs::remove_dir_all(&base);
}

/// Custom bootstrap (`bootstrap.method`) of a new cluster from the same backup, recovering
/// to the end of the backup (`recovery_target: immediate`) and promoting: the rows written
/// after the backup are not there, the new primary accepts writes.
async fn custom_bootstrap_restores_the_backup_to_a_point_in_time(base: &Path, stanza: &str) {
    let conf3 = base.join("pgbackrest-pitr.conf");
    let bootstrap = format!(
        "  method: pitr
  pitr:
    command: /usr/bin/pgbackrest --config={conf} --stanza={stanza} --delta restore
    no_params: true
    recovery_conf:
      restore_command: 'pgbackrest --config={conf} --stanza={stanza} archive-get %f \"%p\"'
      recovery_target: immediate
      recovery_target_action: promote
",
        conf = conf3.display()
    );
    let opts = ClusterOpts {
        members: 1,
        bootstrap_extra: vec![bootstrap],
        start_agents: Some(0),
        ..ClusterOpts::default()
    };
    let mut c = TestCluster::start("rmpitr", opts).await;
    let sock = c.dir.clone();
    pgbackrest_conf(
        &conf3,
        base,
        stanza,
        &c.nodes[0].data_dir,
        c.nodes[0].pg_port,
        &sock,
    );
    c.start_agent(0);
    c.wait_leader_writable(T).await;
    // The bootstrap task's outcome is logged when the loop collects it, which can be just
    // after the member became writable: poll for it.
    wait_for("the custom bootstrap's outcome in the log", T, || async {
        c.log_text(0)
            .contains("initialized a new cluster")
            .then_some(())
    })
    .await;
    let log = c.log_text(0);
    assert!(log.contains("Running custom bootstrap script"), "{log}");
    assert_eq!(
        c.query_one(0, "SELECT count(*)::text FROM t")
            .await
            .as_deref(),
        Some("1000"),
        "recovered to the end of the backup, not beyond"
    );
    let s = c.sql(0).await.expect("sql to the restored primary");
    s.batch_execute("INSERT INTO t VALUES (-1)")
        .await
        .expect("the restored cluster accepts writes");
    let conf = std::fs::read_to_string(c.nodes[0].data_dir.join("postgresql.conf")).unwrap();
    assert!(
        !conf.contains("recovery_target"),
        "recovery settings leave postgresql.conf after the recovery: {conf}"
    );
}
