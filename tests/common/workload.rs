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
    progress: Arc<Mutex<Vec<i64>>>,
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
        let progress = Arc::new(Mutex::new(Vec::new()));
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
        self.progress.lock().unwrap().len()
    }

    /// Ids acknowledged so far (a snapshot, the writer keeps going).
    pub fn acked_ids_so_far(&self) -> Vec<i64> {
        self.progress.lock().unwrap().clone()
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
    progress: Arc<Mutex<Vec<i64>>>,
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
                progress.lock().unwrap().push(next);
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
    try_missing_writes(c, i, acked)
        .await
        .expect("connect to member and read writes")
}

/// [`missing_writes`] that answers None when member `i` cannot be read.
pub async fn try_missing_writes(c: &TestCluster, i: usize, acked: &[i64]) -> Option<Vec<i64>> {
    let s = c.sql(i).await?;
    let rows = s.query("SELECT id FROM writes", &[]).await.ok()?;
    let have: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    Some(
        acked
            .iter()
            .copied()
            .filter(|id| !have.contains(id))
            .collect(),
    )
}

/// Polls every member for `NOT pg_is_in_recovery()` and records any instant with two.
///
/// One round asks every member at the same time (so a hand-over between two sequential
/// queries cannot look like two writable members); rounds are counted and every violating
/// round is kept with the instant it was seen.
pub struct SplitBrainProbe {
    stop: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<(Instant, String)>>>,
    rounds: Arc<std::sync::atomic::AtomicUsize>,
    handle: tokio::task::JoinHandle<()>,
}

/// The writability query of the probe: a primary that is not forced read-only.
const WRITABLE: &str =
    "SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off'";

/// Asks one member whether it accepts writes (None: unreachable, the client is dropped).
async fn probe_one(slot: &mut Option<tokio_postgres::Client>, port: u16) -> bool {
    if slot.as_ref().is_none_or(|c| c.is_closed()) {
        *slot = connect(port).await;
    }
    let Some(c) = slot.as_ref() else {
        return false;
    };
    let q = tokio::time::timeout(Duration::from_millis(500), c.query_one(WRITABLE, &[])).await;
    match q {
        Ok(Ok(row)) => row.get::<_, bool>(0),
        _ => {
            *slot = None;
            false
        }
    }
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
        let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s2, v2, r2) = (stop.clone(), violations.clone(), rounds.clone());
        let handle = tokio::spawn(async move {
            let mut clients: Vec<Option<tokio_postgres::Client>> =
                ports.iter().map(|_| None).collect();
            while !s2.load(Ordering::SeqCst) {
                let asks = clients
                    .iter_mut()
                    .zip(&ports)
                    .map(|(slot, (_, port))| probe_one(slot, *port));
                let answers = futures::future::join_all(asks).await;
                let writable: Vec<&String> = ports
                    .iter()
                    .zip(answers)
                    .filter(|(_, w)| *w)
                    .map(|((name, _), _)| name)
                    .collect();
                r2.fetch_add(1, Ordering::Relaxed);
                if writable.len() > 1 {
                    v2.lock()
                        .unwrap()
                        .push((Instant::now(), format!("{writable:?} writable at once")));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        SplitBrainProbe {
            stop,
            violations,
            rounds,
            handle,
        }
    }

    /// Probe rounds completed so far.
    pub fn rounds(&self) -> usize {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Violating rounds so far with the instant each was seen (the probe keeps going).
    pub fn violations_so_far(&self) -> Vec<(Instant, String)> {
        self.violations.lock().unwrap().clone()
    }

    /// Stops the probe and returns what it saw.
    pub async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.handle.await;
        let seen = self.violations.lock().unwrap();
        seen.iter().map(|(_, v)| v.clone()).collect()
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
