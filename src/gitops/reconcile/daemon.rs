//! The reconcile loop. Each pass: new desired commit → validate → plan → apply (CAS);
//! DCS change → drift check (alert / revert); then commit observed state back.
//! An invalid commit applies nothing and keeps the last good state.

use super::source::Source;
use crate::dcs::etcd::EtcdDcs;
use crate::dcs::{Dcs, Keys};
use crate::gitops::desired::DesiredState;
use crate::gitops::git::CommitInfo;
use crate::gitops::GitopsError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of the daemon.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Local repository directory.
    pub repo: PathBuf,
    /// etcd endpoints override (else the -c file, the environment, patronus.yaml).
    pub hosts: Option<Vec<String>>,
    /// etcd and agent connection settings from the -c file and the environment.
    pub connection: crate::gitops::connection::ConnectionSource,
    /// Commit observed state back under status/.
    pub commit_back: bool,
    /// Remote URL cloned into `repo` (our work dir), fetched every `fetch_interval` and on
    /// POST /hooks/git; status commits are pushed back.
    pub remote: Option<String>,
    /// Fetch interval for a remote repository.
    pub fetch_interval: Duration,
    /// This reconciler's identity in the `gitops-lock` keys (unique per process).
    pub id: String,
    /// Seconds the lease of a held `gitops-lock` lives without renewal.
    pub lock_ttl: u64,
    /// How many clusters' DCS reads (and writes) run at once.
    pub concurrency: usize,
}

/// Default of [`ReconcileOptions::concurrency`].
pub const DEFAULT_CONCURRENCY: usize = 16;

pub(super) struct ClusterState {
    pub(super) dcs: Arc<EtcdDcs>,
    pub(super) changes: tokio::sync::watch::Receiver<u64>,
    /// The endpoints and namespace `dcs` talks to (a commit may move the cluster).
    pub(super) endpoint: String,
    /// The watch counter of `changes` at the last drift check (None: check at the next pass).
    pub(super) drift_seen: Option<u64>,
    pub(super) reported: BTreeMap<String, Value>,
    pub(super) last_drift: Option<Value>,
    pub(super) events: Vec<Value>,
    /// Timelines whose switch is already in the committed history (None = not loaded yet).
    pub(super) recorded_timelines: Option<std::collections::BTreeSet<u64>>,
    /// Recent drift events, for `GET /status` (bounded, newest last).
    pub(super) drift_log: Vec<Value>,
    /// Since when each member tag has been published differently from git.
    pub(super) tag_since: BTreeMap<String, Instant>,
    /// Whether this reconciler is the cluster's active one.
    pub(super) lock: super::lock::LockState,
    /// A followed commit is still to be decided for this cluster.
    pub(super) commit_due: bool,
}

/// The daemon state.
pub struct Reconciler {
    pub(super) opts: ReconcileOptions,
    pub(super) source: Source,
    pub(super) seen: Option<String>,
    pub(super) desired: Option<(DesiredState, CommitInfo)>,
    pub(super) clusters: BTreeMap<String, ClusterState>,
    pub(super) last_error: Option<String>,
    /// Retry pacing for a commit that could not be applied (DCS unavailable).
    pub(super) apply_retry: super::backoff::Backoff,
    /// Retry pacing for fetching the remote.
    pub(super) fetch_retry: super::backoff::Backoff,
    pub(super) http: reqwest::Client,
    pub(super) exec: super::exec::Exec,
    pub(super) op_notes: BTreeMap<String, String>,
    /// Clusters owing restarts that wait for a maintenance window (the owed-restarts metric).
    pub(super) parked: std::collections::BTreeSet<String>,
    pub(super) first_blocked: BTreeMap<String, chrono::DateTime<chrono::Utc>>,
    pub(super) last_steps: Instant,
    /// Status published for `GET /status` and `/metrics`.
    pub board: Arc<super::api::StatusBoard>,
    pub(super) drift_counts: BTreeMap<String, u64>,
    /// History events not yet offered to the webhooks (with their `cluster`).
    pub(super) outbox: Vec<Value>,
    /// Per cluster: the REST request of the wave step in flight.
    pub(super) wave_tasks: BTreeMap<String, tokio::task::JoinHandle<Result<String, String>>>,
    /// Adopt branches still to push to the remote.
    pub(super) adopt_pushes: Vec<String>,
    /// Per `scope/op-id`: the request task of a claimed operation.
    pub(super) op_tasks: BTreeMap<String, tokio::task::JoinHandle<Result<String, String>>>,
    /// Per cluster: no new wave step before this instant (after a failed one).
    pub(super) wave_retry: BTreeMap<String, Instant>,
    /// Set by the inotify watch of a local checkout when a ref changed (None: polling only).
    pub(super) refs_changed: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// When HEAD was last read under the inotify watch.
    pub(super) last_head_read: Instant,
    /// The fallback poll of HEAD under the inotify watch.
    pub(super) repo_poll: Duration,
    /// When every cluster was last checked for drift, and against which commit.
    pub(super) drift_full: (Instant, Option<String>),
    /// Since when the followed commit is being applied (None: applied, or none followed).
    pub(super) following: Option<Instant>,
    /// Per `scope/op-id`: the outcome of a finished operation request, until recorded.
    pub(super) op_outcomes: BTreeMap<String, Result<String, String>>,
    /// Per cluster: the error of a finished wave request, until its step is concluded.
    pub(super) wave_failures: BTreeMap<String, String>,
    /// Per cluster: the `GET /status` entry and the fingerprint it was built for.
    pub(super) board_cache: BTreeMap<String, (u64, Value)>,
    /// The fingerprint of the document's top-level fields (desired commit, last error).
    pub(super) board_stamp: u64,
    /// Woken by any cluster's DCS watch (one forwarding task per connected cluster).
    pub(super) dcs_wake: Arc<tokio::sync::Notify>,
}

/// The longest pause between passes (time-driven work: lock renewal, operations and waves,
/// the periodic drift check, remote fetches).
const TICK: Duration = Duration::from_millis(200);

/// How often observed state is committed back.
const COMMIT_BACK_EVERY: Duration = Duration::from_secs(5);

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

impl Reconciler {
    /// Opens the repository.
    pub fn new(opts: ReconcileOptions) -> Result<Reconciler, GitopsError> {
        let source = match &opts.remote {
            Some(url) => Source::clone_remote(url, &opts.repo).map_err(GitopsError::Other)?,
            None => Source::open(&opts.repo).map_err(GitopsError::Other)?,
        };
        let exec = super::exec::Exec::new(&opts.connection.agents())?;
        let http = super::webhook::client(None)?;
        let board: Arc<super::api::StatusBoard> = Arc::default();
        let refs_changed = match source.remote {
            Some(_) => None, // our clone moves only when we fetch
            None => {
                let b = board.clone();
                super::watch::watch_refs(&opts.repo, move || b.wake.notify_one())
                    .map_err(|e| tracing::warn!("{e}; polling the repository only"))
                    .ok()
            }
        };
        Ok(Reconciler {
            opts,
            source,
            seen: None,
            desired: None,
            clusters: BTreeMap::new(),
            last_error: None,
            apply_retry: Default::default(),
            fetch_retry: Default::default(),
            http,
            exec,
            op_notes: BTreeMap::new(),
            parked: Default::default(),
            first_blocked: BTreeMap::new(),
            last_steps: Instant::now() - Duration::from_secs(60),
            board,
            drift_counts: BTreeMap::new(),
            outbox: Vec::new(),
            wave_tasks: BTreeMap::new(),
            wave_retry: BTreeMap::new(),
            op_tasks: BTreeMap::new(),
            adopt_pushes: Vec::new(),
            refs_changed,
            last_head_read: Instant::now(),
            repo_poll: super::watch::fallback_poll(),
            drift_full: (Instant::now(), None),
            following: None,
            op_outcomes: BTreeMap::new(),
            wave_failures: BTreeMap::new(),
            board_cache: BTreeMap::new(),
            board_stamp: 0,
            dcs_wake: Arc::default(),
        })
    }

    /// Runs until `shutdown` flips: a pass, then a pause until a cluster's DCS keys change,
    /// the repository moves (inotify, `POST /hooks/git`) or [`TICK`] passes.
    pub async fn run(
        mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), GitopsError> {
        tracing::info!("reconciling {}", self.opts.repo.display());
        let mut last_status = Instant::now() - Duration::from_secs(60);
        let mut last_fetch = Instant::now();
        let mut hooked = false;
        loop {
            // A cluster just taken over: its history base is the remote's, fetched now.
            hooked |= self.refresh_locks().await;
            if self.fetch_due(hooked, last_fetch) {
                self.fetch().await;
                last_fetch = Instant::now();
                hooked = false;
            }
            self.follow_repo().await;
            self.reconcile_clusters().await;
            self.after_commit_pass();
            self.flush_outbox().await;
            if !self.adopt_pushes.is_empty() {
                self.push_adopt_branches().await;
            }
            if last_status.elapsed() > COMMIT_BACK_EVERY {
                self.commit_back().await; // publishes the status document too
                last_status = Instant::now();
            } else {
                // `GET /status` follows every pass (rebuilt only where something changed).
                self.publish_status().await;
            }
            let (board, wake) = (self.board.clone(), self.dcs_wake.clone());
            let stop = tokio::select! {
                _ = wake.notified() => false,
                _ = board.wake.notified() => {
                    hooked = true;
                    false
                }
                _ = tokio::time::sleep(TICK) => false,
                _ = shutdown.changed() => true,
            };
            if stop {
                tracing::info!("reconciler stopping");
                self.flush_outbox().await;
                self.commit_back().await;
                self.release_locks().await;
                return Ok(());
            }
        }
    }

    /// Whether the remote is fetched in this pass (a hook or takeover, or its interval).
    fn fetch_due(&self, hooked: bool, last_fetch: Instant) -> bool {
        self.source.remote.is_some()
            && (hooked || last_fetch.elapsed() >= self.opts.fetch_interval)
            && self.fetch_retry.ready(Instant::now())
    }

    /// Fetches the remote on a blocking thread (backoff on failure).
    async fn fetch(&mut self) {
        match super::source::blocking(&self.source, Source::fetch)
            .await
            .and_then(|r| r)
        {
            Ok(_) => self.fetch_retry.succeeded(),
            Err(e) => {
                let wait = self.fetch_retry.failed(Instant::now());
                tracing::warn!("{e}; retrying in {:.1} s", wait.as_secs_f64());
            }
        }
    }

    /// Connects to the DCS of cluster `scope` (its own `dcs` section over the shared
    /// settings); reconnects when a commit moved the cluster to other endpoints.
    pub(super) async fn connect(
        &mut self,
        state: &DesiredState,
        scope: &str,
    ) -> Result<(), GitopsError> {
        let own = state
            .clusters
            .iter()
            .find(|c| c.scope == scope)
            .and_then(|c| c.dcs.as_ref());
        let (settings, namespace) = self
            .opts
            .connection
            .clone()
            .with_hosts(self.opts.hosts.clone())
            .etcd_for(&state.settings, own)?;
        let endpoint = format!("{}{namespace}", settings.urls().join(","));
        if self
            .clusters
            .get(scope)
            .is_some_and(|cs| cs.endpoint == endpoint)
        {
            return Ok(());
        }
        let dcs = EtcdDcs::connect(&settings, Keys::new(&namespace, scope), true).await?;
        dcs.set_ttl(self.opts.lock_ttl);
        let changes = dcs.subscribe();
        forward_changes(dcs.subscribe(), self.dcs_wake.clone());
        if let Some(cs) = self.clusters.get_mut(scope) {
            tracing::info!("cluster {scope}: DCS moved to {endpoint}");
            cs.dcs = dcs;
            cs.changes = changes;
            cs.endpoint = endpoint;
            cs.drift_seen = None;
            return Ok(());
        }
        self.clusters.insert(
            scope.to_string(),
            ClusterState {
                dcs,
                changes,
                endpoint,
                drift_seen: None,
                reported: BTreeMap::new(),
                last_drift: None,
                events: vec![],
                recorded_timelines: None,
                drift_log: vec![],
                tag_since: BTreeMap::new(),
                lock: Default::default(),
                commit_due: false,
            },
        );
        self.refresh_lock(scope).await;
        Ok(())
    }
    /// Records a history event of cluster `scope` (committed back, offered to the webhooks).
    /// Only the cluster's active reconciler records (see [`super::lock`]).
    pub(super) fn emit(&mut self, scope: &str, ev: Value) {
        if !self.holds(scope) {
            tracing::debug!("cluster {scope}: not the active reconciler; event not recorded");
            return;
        }
        let Some(cs) = self.clusters.get_mut(scope) else {
            return;
        };
        cs.events.push(ev.clone());
        let mut out = ev;
        if out.get("cluster").is_none() {
            out["cluster"] = json!(scope);
        }
        self.outbox.push(out);
    }

    /// Offers the events recorded since the last call to the webhooks.
    pub(super) async fn flush_outbox(&mut self) {
        for ev in std::mem::take(&mut self.outbox) {
            self.notify(ev).await;
        }
    }

    /// POSTs an event to every configured webhook whose `events` take it (3 tries each).
    pub(super) async fn notify(&self, event: Value) {
        let Some((state, _)) = self.desired.as_ref() else {
            return;
        };
        let kind = event.get("event").and_then(Value::as_str).unwrap_or("");
        for hook in super::webhook::targets(&state.settings) {
            if !hook.wants(kind) {
                continue;
            }
            let Some(http) = super::webhook::client_for(&hook, &self.http) else {
                continue;
            };
            let (url, ev) = (hook.url, crate::secrets::redact_json(&event));
            tokio::spawn(async move {
                for attempt in 0..3u32 {
                    if http
                        .post(&url)
                        .json(&ev)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
                }
                tracing::warn!("webhook {url} did not accept the event");
            });
        }
    }
}

/// Wakes the loop on every change of a cluster's watched keys (until its DCS is dropped).
fn forward_changes(mut rx: tokio::sync::watch::Receiver<u64>, wake: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            wake.notify_one();
        }
    });
}
