//! Issue: the main job on one machine — `patronus demo` comes up (3 members, 1 leader, 2
//! streaming), a commit to its repository is applied, Ctrl-C leaves no process behind;
//! HAProxy routes writes to the primary and reads to replicas, across a failover; the
//! multi-host DSN follows a switchover; `/metrics` carries Patroni's names.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(180);

fn pids_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && pid != std::process::id() as i32 {
            out.push(pid);
        }
    }
    out
}

/// A failing test still stops the demo (SIGINT: it stops everything it started) and waits
/// for its processes, so that none outlives the test.
struct StopOnPanic {
    pid: u32,
    dir: std::path::PathBuf,
}

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        let needle = self.dir.to_string_lossy().into_owned();
        while !pids_mentioning(&needle).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

async fn pg(port: u16) -> Option<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .password("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2))
        .connect(tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(c)
}

async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_url(&format!("http://127.0.0.1:{port}{path}")).await
}

/// Where `patronus demo` looks for HAProxy; a missing binary fails the test (never a skip).
fn require_haproxy() {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    assert!(
        found,
        "haproxy is not installed (/usr/sbin/haproxy or /usr/bin/haproxy): the demo test checks \
         HAProxy routing; apt-get install haproxy (run ci/install-deps.sh)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_whole_stack_and_stops_cleanly() {
    require_haproxy();
    let dir = temp_dir("demo");
    // Every demo port (up to 8080 + off) below 32768, where the ephemeral ports begin: an
    // outgoing connection holding one made HAProxy's bind fail once.
    let off: u16 = 10000 + (std::process::id() % 1400) as u16 * 10;
    let mut child = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .args(["--port-offset", &off.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start demo");
    let _cleanup = StopOnPanic {
        pid: child.id(),
        dir: dir.clone(),
    };
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = std::time::Instant::now() + T;
    loop {
        let line = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        if line.contains("patronus demo is ready") {
            break;
        }
        assert!(
            std::time::Instant::now() < ready,
            "demo did not become ready"
        );
        if let Ok(Some(st)) = child.try_wait() {
            panic!("demo exited early: {st}");
        }
    }
    // The dashboard's URL is printed with the rest; its fleet page lists the demo cluster.
    let mut dashboard = None;
    while dashboard.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the demo's banner");
        dashboard = line
            .trim()
            .strip_prefix("dashboard:")
            .map(|u| u.trim().to_string());
        assert!(!line.contains("Press Ctrl-C"), "no dashboard URL printed");
    }
    let dashboard = dashboard.unwrap();
    assert_eq!(dashboard, format!("http://127.0.0.1:{}/", 8080 + off));
    wait_for(
        "the dashboard's fleet page lists the demo cluster",
        T,
        || async {
            let (code, body) = http_get_url(&dashboard).await?;
            (code == 200 && body.contains("data-cluster=\"demo\"")).then_some(())
        },
    )
    .await;
    let api = |i: u16| 8000 + i + off;
    let pgp = |i: u16| 5431 + i + off;

    // 3 members: one leader, two streaming replicas.
    let (code, body) = get(api(1), "/cluster").await.unwrap();
    assert_eq!(code, 200);
    let cl: Value = serde_json::from_str(&body).unwrap();
    wait_for("1 leader and 2 streaming replicas", T, || async {
        let (_, body) = get(api(1), "/cluster").await?;
        let cl: Value = serde_json::from_str(&body).ok()?;
        let m = cl["members"].as_array()?;
        let leaders = m.iter().filter(|x| x["role"] == "leader").count();
        let streaming = m.iter().filter(|x| x["state"] == "streaming").count();
        (leaders == 1 && streaming == 2).then_some(())
    })
    .await;
    assert_eq!(cl["scope"], "demo");

    // /metrics with Patroni's names.
    let (code, metrics) = get(api(1), "/metrics").await.unwrap();
    assert_eq!(code, 200);
    for name in [
        "patroni_version",
        "patroni_postgres_running",
        "patroni_primary",
        "patroni_replica",
        "patroni_xlog_location",
        "patroni_postgres_timeline",
        "patroni_dcs_last_seen",
        "patroni_pending_restart",
        "patroni_is_paused",
        "patroni_postgres_state",
        "patroni_failover_priority",
        "patroni_cluster_unlocked",
        "patroni_postgres_server_version",
    ] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{scope=\"demo\",name=\"node1\"}} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"));
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(metrics.contains("patroni_postgres_running{scope=\"demo\",name=\"node1\"} 1"));

    // A commit to the demo repository is applied on every member.
    let repo = dir.join("repo");
    let file = repo.join("clusters/demo/cluster.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("work_mem: 8MB", "work_mem: 12MB");
    std::fs::write(&file, text).unwrap();
    // The reconciler commits observed state into the same checkout: a concurrent commit can
    // meet its index lock, so retry like a person would.
    wait_for("git commit to succeed", T, || async {
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args([
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@x",
                "commit",
                "-qam",
                "work_mem 12MB",
            ])
            .status()
            .ok()?
            .success()
            .then_some(())
    })
    .await;
    for i in 1..=3 {
        wait_for("work_mem 12MB on every member", T, || async {
            let row = pg(pgp(i))
                .await?
                .query_one("SHOW work_mem", &[])
                .await
                .ok()?;
            (row.get::<_, String>(0) == "12MB").then_some(())
        })
        .await;
    }
    wait_for("observed state committed back", T, || async {
        let o = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["log", "--format=%B"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&o.stdout)
            .contains("Desired-Commit:")
            .then_some(())
    })
    .await;

    // HAProxy: writes via the primary port, reads via the replica port.
    let hp = 5000 + off;
    let hr = 5001 + off;
    wait_for("haproxy primary port reaches the primary", T, || async {
        let row = pg(hp)
            .await?
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .ok()?;
        (!row.get::<_, bool>(0)).then_some(())
    })
    .await;
    // HAProxy starts servers UP until their first failed checks: wait until its stats mark
    // exactly one server (the primary) DOWN in the replicas backend.
    wait_for(
        "haproxy to take the primary out of the replicas backend",
        T,
        || async {
            let (_, csv) = get(7000 + off, "/;csv").await?;
            let down = csv
                .lines()
                .filter(|l| l.starts_with("replicas,node") && l.contains(",DOWN,"))
                .count();
            let up = csv
                .lines()
                .filter(|l| l.starts_with("replicas,node") && l.contains(",UP,"))
                .count();
            (down == 1 && up == 2).then_some(())
        },
    )
    .await;
    for _ in 0..4 {
        let c = wait_for("haproxy replica port", T, || pg(hr)).await;
        let ro: bool = c
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(ro, "reads through 5001 reach replicas only");
    }
    // After a switchover the primary port follows the new leader.
    let node1 = dir.join("node1.yml");
    let leader_before = pg(hp)
        .await
        .unwrap()
        .query_one("SELECT inet_server_port()", &[])
        .await
        .unwrap()
        .get::<_, i32>(0);
    let out = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .arg("-c")
        .arg(&node1)
        .args(["switchover", "--force"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("haproxy primary port follows the new leader", T, || async {
        let c = pg(hp).await?;
        let port: i32 = c
            .query_one("SELECT inet_server_port()", &[])
            .await
            .ok()?
            .get(0);
        let ro: bool = c
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .ok()?
            .get(0);
        (port != leader_before && !ro).then_some(())
    })
    .await;
    // The multi-host libpq DSN with target_session_attrs=read-write reaches the new primary.
    let dsn = format!("postgresql://postgres:postgres@127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write", pgp(1), pgp(2), pgp(3));
    let (c, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let ro: bool = c
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!ro);

    // Ctrl-C stops everything.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = wait_for("demo to exit", T, || {
        let s = child.try_wait().ok().flatten();
        async move { s }
    })
    .await;
    assert!(status.success(), "demo exit status {status}");
    let left = pids_mentioning(dir.to_str().unwrap());
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
