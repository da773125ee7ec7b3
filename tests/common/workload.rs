//! A continuous writer through a multi-host DSN and a probe that no two members accept writes.

use super::TestCluster;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Results of a writer run.
#[derive(Debug, Default, Clone)]
pub struct WriterReport {
    /// Ids whose INSERT was acknowledged.
    pub acked: Vec<i64>,
    /// Longest time between two acknowledged writes.
    pub max_gap: Duration,
    /// Errors seen (reconnects).
    pub errors: usize,
    /// When each acknowledged write returned.
    pub ack_times: Vec<Instant>,
}

impl WriterReport {
    /// Longest gap between acknowledged writes that overlaps `[from, to]`.
    pub fn max_gap_between(&self, from: Instant, to: Instant) -> Duration {
        let mut best = Duration::ZERO;
        for w in self.ack_times.windows(2) {
            if w[1] >= from && w[0] <= to {
                best = best.max(w[1] - w[0]);
            }
        }
        best
    }
}

/// A writer inserting increasing ids through `target_session_attrs=read-write`.
pub struct Writer {
    stop: Arc<AtomicBool>,
    progress: Arc<std::sync::atomic::AtomicUsize>,
    handle: tokio::task::JoinHandle<WriterReport>,
}

impl Writer {
    /// Creates the table on the current leader, then writes until stopped.
    pub async fn start(c: &TestCluster) -> Writer {
        let hosts: Vec<String> = c
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.pg_port))
            .collect();
        let dsn = format!(
            "postgresql://postgres:{}@{}/postgres?target_session_attrs=read-write&connect_timeout=2",
            super::SUPERPASS,
            hosts.join(",")
        );
        let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .expect("writer connects");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS writes(id bigint PRIMARY KEY)")
            .await
            .expect("create table");
        drop(client);
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s2, p2) = (stop.clone(), progress.clone());
        let handle = tokio::spawn(async move { write_loop(dsn, s2, p2).await });
        Writer {
            stop,
            progress,
            handle,
        }
    }

    /// Acknowledged writes so far (a snapshot, the writer keeps going).
    pub fn acked_so_far(&self) -> usize {
        self.progress.load(Ordering::Relaxed)
    }

    /// Stops and returns the report.
    pub async fn stop(self) -> WriterReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.expect("writer task")
    }
}

async fn write_loop(
    dsn: String,
    stop: Arc<AtomicBool>,
    progress: Arc<std::sync::atomic::AtomicUsize>,
) -> WriterReport {
    let mut r = WriterReport::default();
    let mut last_ok = Instant::now();
    let mut next: i64 = 1;
    let mut client: Option<tokio_postgres::Client> = None;
    while !stop.load(Ordering::SeqCst) {
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            match tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await {
                Ok((c, conn)) => {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    client = Some(c);
                }
                Err(_) => {
                    r.errors += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(c) = client.as_ref() else { continue };
        let q = tokio::time::timeout(
            Duration::from_secs(3),
            c.execute("INSERT INTO writes(id) VALUES ($1)", &[&next]),
        )
        .await;
        match q {
            Ok(Ok(_)) => {
                r.acked.push(next);
                r.ack_times.push(Instant::now());
                progress.fetch_add(1, Ordering::Relaxed);
                r.max_gap = r.max_gap.max(last_ok.elapsed());
                last_ok = Instant::now();
            }
            _ => {
                r.errors += 1;
                client = None;
            }
        }
        next += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r
}

/// Every acknowledged id must be present on member `i`; returns the missing ones.
pub async fn missing_writes(c: &TestCluster, i: usize, acked: &[i64]) -> Vec<i64> {
    let s = c.sql(i).await.expect("connect to check writes");
    let rows = s
        .query("SELECT id FROM writes", &[])
        .await
        .expect("read writes");
    let have: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    acked
        .iter()
        .copied()
        .filter(|id| !have.contains(id))
        .collect()
}

/// Polls every member for `NOT pg_is_in_recovery()` and records any instant with two.
pub struct SplitBrainProbe {
    stop: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<String>>>,
    handle: tokio::task::JoinHandle<()>,
}

impl SplitBrainProbe {
    /// Starts probing the members' PostgreSQL ports.
    pub fn start(c: &TestCluster) -> SplitBrainProbe {
        let ports: Vec<(String, u16)> = c
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.pg_port))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let (s2, v2) = (stop.clone(), violations.clone());
        let handle = tokio::spawn(async move {
            let mut clients: Vec<Option<tokio_postgres::Client>> =
                ports.iter().map(|_| None).collect();
            while !s2.load(Ordering::SeqCst) {
                let mut writable = Vec::new();
                for (k, (name, port)) in ports.iter().enumerate() {
                    if clients[k].as_ref().is_none_or(|c| c.is_closed()) {
                        clients[k] = connect(*port).await;
                    }
                    let Some(c) = clients[k].as_ref() else {
                        continue;
                    };
                    let q = tokio::time::timeout(Duration::from_millis(500), c.query_one("SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off'", &[])).await;
                    match q {
                        Ok(Ok(row)) if row.get::<_, bool>(0) => writable.push(name.clone()),
                        Ok(Ok(_)) => {}
                        _ => clients[k] = None,
                    }
                }
                if writable.len() > 1 {
                    v2.lock()
                        .unwrap()
                        .push(format!("{writable:?} writable at once"));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        SplitBrainProbe {
            stop,
            violations,
            handle,
        }
    }

    /// Stops the probe and returns what it saw.
    pub async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.handle.await;
        self.violations.lock().unwrap().clone()
    }
}

async fn connect(port: u16) -> Option<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .password(super::SUPERPASS)
        .dbname("postgres")
        .connect_timeout(Duration::from_millis(500))
        .connect(tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(client)
}
