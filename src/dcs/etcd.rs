//! etcd v3 implementation of [`Dcs`]: one lease per agent, leader key by create-revision
//! transaction, value-compare release, CAS writes on `mod_revision`, and a watch-fed cache.

use super::cluster::{Cluster, RawKv};
use super::error::DcsError;
use super::keys::{self, Keys};
use super::model::{Failover, Member, Status};
use super::retry::retry;
use members::Members;
use watch::cache_task;

mod lock;
mod members;
mod probe;
mod settings;
mod watch;
use super::traits::{Dcs, DcsResult};
use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, GetOptions, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn,
    TxnOp,
};
use serde_json::Value;
pub(crate) use settings::{describe, settings_problem};
pub use settings::{settings_of_section, EtcdSettings, EtcdTls};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Mutex;

struct LeaseState {
    id: i64,
    /// The TTL it was granted with.
    ttl: i64,
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
    /// The endpoint the keepalive stream was opened on.
    member: usize,
}

#[derive(Default)]
struct Cache {
    ready: bool,
    revision: i64,
    kvs: BTreeMap<String, RawKv>,
}

/// The etcd-backed DCS for one cluster.
pub struct EtcdDcs {
    members: Members,
    /// With https endpoints: the TLS configuration that finds out why connections close.
    tls_probe: Option<Arc<rustls::ClientConfig>>,
    keys: Keys,
    ttl: AtomicI64,
    timeout_ms: AtomicU64,
    lease: Mutex<Option<LeaseState>>,
    lease_id: AtomicI64,
    cache: Arc<RwLock<Cache>>,
    notify: tokio::sync::watch::Sender<u64>,
}

impl EtcdDcs {
    /// Connects to etcd. With `watch`, starts the cache task that feeds [`Dcs::cluster`]
    /// and change notifications (agents); without, every read goes to etcd (CLI).
    pub async fn connect(settings: &EtcdSettings, keys: Keys, watch: bool) -> DcsResult<Arc<Self>> {
        let endpoints = settings.urls();
        if endpoints.is_empty() {
            return Err(DcsError::Refused("no etcd endpoints".into()));
        }
        let opts = settings.connect_options()?;
        let tls_probe = probe::probe_config(settings);
        let members = Members::new(endpoints, opts);
        members.connect_first().await?;
        let (notify, _) = tokio::sync::watch::channel(0u64);
        let dcs = Arc::new(EtcdDcs {
            members,
            tls_probe,
            keys,
            ttl: AtomicI64::new(30),
            timeout_ms: AtomicU64::new(3000),
            lease: Mutex::new(None),
            lease_id: AtomicI64::new(0),
            cache: Arc::new(RwLock::new(Cache::default())),
            notify,
        });
        if watch {
            let weak = Arc::downgrade(&dcs);
            tokio::spawn(async move { cache_task(weak).await });
        }
        Ok(dcs)
    }

    /// Sets the lease TTL used for new leases (the cluster's `ttl`).
    pub fn set_ttl(&self, ttl: u64) {
        self.ttl.store(
            i64::try_from(ttl.max(2)).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Sets the retry budget of one DCS call (`retry_timeout`).
    pub fn set_timeout(&self, d: Duration) {
        self.timeout_ms.store(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The retry budget of one DCS call (`retry_timeout`).
    fn budget(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    /// One call, retried inside the `retry_timeout` budget.
    async fn call<T, F, Fut>(&self, what: &str, op: F) -> DcsResult<T>
    where
        F: Fn(Client) -> Fut + Sync,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_on(what, op).await.map(|(v, _)| v)
    }

    /// [`EtcdDcs::call`], also answering the endpoint that served it. Each attempt goes to
    /// the endpoint in use; a failed attempt (error or deadline) moves on to the next one.
    async fn call_on<T, F, Fut>(&self, what: &str, op: F) -> DcsResult<(T, usize)>
    where
        F: Fn(Client) -> Fut + Sync,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let (members, op) = (&self.members, &op);
        let mut tried = None;
        let r = retry(what, self.budget(), || {
            // Called again only after the previous attempt failed.
            if let Some(i) = tried {
                members.failed(i);
            }
            let i = members.current();
            tried = Some(i);
            async move { Ok((op(members.client(i).await?).await?, i)) }
        })
        .await;
        if let (Err(DcsError::Unavailable(_) | DcsError::Timeout(_)), Some(i)) = (&r, tried) {
            members.failed(i);
        }
        let Some(i) = tried else {
            return r;
        };
        let url = members.url(i);
        match r {
            Err(e) => Err(self.diagnose(what, e, url).await.at(url)),
            ok => ok,
        }
    }

    /// A failed call whose connection was closed on an https endpoint: a TLS refusal the
    /// probe finds (see [`probe`]) replaces it.
    async fn diagnose(&self, what: &str, e: DcsError, url: &str) -> DcsError {
        let Some(config) = self.tls_probe.clone().filter(|_| probe::worth_probing(&e)) else {
            return e;
        };
        match probe::probe(url, config).await {
            Some(alert) => DcsError::Refused(format!(
                "{what}: TLS handshake failed (the server closed the connection: {alert}); \
                 check cacert, cert and key"
            )),
            None => e,
        }
    }

    /// Refreshes our lease, granting a new one when it is missing, expired, unknown to etcd
    /// or granted for another `ttl`. Returns its id. While etcd cannot be reached the lease
    /// is kept (it may still be alive) and the error returned.
    async fn refresh_lease(&self) -> DcsResult<i64> {
        let mut guard = self.lease.lock().await;
        let ttl = self.ttl.load(Ordering::Relaxed);
        if let Some(state) = guard.as_mut() {
            if state.ttl != ttl {
                tracing::info!(
                    lease = state.id,
                    "ttl changed from {} to {ttl}: granting a new lease",
                    state.ttl
                );
            } else if let Some(id) = self.renew(state).await? {
                return Ok(id);
            }
            *guard = None;
        }
        let id = self
            .call("lease grant", |mut c| async move {
                Ok(c.lease_grant(ttl, None).await?.id())
            })
            .await?;
        let ((keeper, stream), member) = self.open_keepalive(id).await?;
        *guard = Some(LeaseState {
            id,
            ttl,
            keeper,
            stream,
            member,
        });
        self.lease_id.store(id, Ordering::Relaxed);
        Ok(id)
    }

    /// Renews a lease we hold: `Some(id)` when it lives on, `None` when etcd no longer knows
    /// it (a new one must be granted), an error while etcd cannot be reached.
    async fn renew(&self, state: &mut LeaseState) -> DcsResult<Option<i64>> {
        match self.keepalive_once(state).await {
            Ok(Some(ttl)) if ttl > 0 => return Ok(Some(state.id)),
            Ok(_) => {
                tracing::warn!(lease = state.id, "lease expired, granting a new one");
                return Ok(None);
            }
            Err(e) => {
                tracing::debug!(lease = state.id, "keepalive stream broken: {e}");
                self.members.failed(state.member);
            }
        }
        // The stream is broken (etcd restarted, connection lost): opening a new one is a
        // keepalive round trip of its own, and tells us when etcd has forgotten the lease.
        match self.open_keepalive(state.id).await {
            Ok(((keeper, stream), member)) => {
                state.keeper = keeper;
                state.stream = stream;
                state.member = member;
                Ok(Some(state.id))
            }
            Err(DcsError::Refused(e)) => {
                tracing::warn!(lease = state.id, "{e}; granting a new lease");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Opens the keepalive stream of lease `id` (one renewal round trip); also answers the
    /// endpoint it is open on.
    async fn open_keepalive(
        &self,
        id: i64,
    ) -> DcsResult<((LeaseKeeper, LeaseKeepAliveStream), usize)> {
        self.call_on("lease keepalive", |mut c| async move {
            c.lease_keep_alive(id).await
        })
        .await
    }

    /// One keepalive round trip on the open stream; the TTL the server granted (0 = lease
    /// gone). Not retried: a broken stream stays broken.
    async fn keepalive_once(&self, state: &mut LeaseState) -> DcsResult<Option<i64>> {
        let round_trip = async {
            state.keeper.keep_alive().await?;
            Ok::<_, etcd_client::Error>(state.stream.message().await?.map(|r| r.ttl()))
        };
        match tokio::time::timeout(self.budget() / 3, round_trip).await {
            Ok(r) => r.map_err(DcsError::from),
            Err(_) => Err(DcsError::Timeout("lease keepalive".into())),
        }
    }

    async fn txn(&self, what: &str, txn: Txn) -> DcsResult<bool> {
        self.call(what, |mut c| {
            let txn = txn.clone();
            async move { Ok(c.txn(txn).await?.succeeded()) }
        })
        .await
    }

    /// A plain put (optionally on a lease), retried.
    async fn put(
        &self,
        what: &str,
        key: String,
        value: String,
        lease: Option<i64>,
    ) -> DcsResult<()> {
        let opts = lease.map(|l| PutOptions::new().with_lease(l));
        self.call(what, |mut c| {
            let (key, value, opts) = (key.clone(), value.clone(), opts.clone());
            async move { c.put(key, value, opts).await.map(|_| ()) }
        })
        .await
    }

    /// A plain delete (optionally of a whole prefix), retried.
    async fn delete(&self, what: &str, key: String, prefix: bool) -> DcsResult<()> {
        let opts = prefix.then(|| etcd_client::DeleteOptions::new().with_prefix());
        self.call(what, |mut c| {
            let (key, opts) = (key.clone(), opts.clone());
            async move { c.delete(key, opts).await.map(|_| ()) }
        })
        .await
    }

    async fn put_cas(&self, key: String, value: String, expected: Option<i64>) -> DcsResult<bool> {
        match expected {
            None => self.put("put", key, value, None).await.map(|_| true),
            Some(v) => {
                self.txn(
                    "compare-and-swap",
                    Txn::new()
                        .when([at_revision(&key, v)])
                        .and_then([TxnOp::put(key, value, None)]),
                )
                .await
            }
        }
    }

    async fn read_all(&self) -> DcsResult<(BTreeMap<String, RawKv>, i64)> {
        let prefix = self.keys.prefix();
        let resp = self
            .call("range", |mut c| {
                let prefix = prefix.clone();
                async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        let rev = resp.header().map_or(0, |h| h.revision());
        let mut kvs = BTreeMap::new();
        for kv in resp.kvs() {
            kvs.insert(String::from_utf8_lossy(kv.key()).into_owned(), raw_of(kv));
        }
        Ok((kvs, rev))
    }
}

/// "The key is at revision `expected`" (0: the key does not exist).
fn at_revision(key: &str, expected: i64) -> Compare {
    if expected == 0 {
        Compare::create_revision(key, CompareOp::Equal, 0)
    } else {
        Compare::mod_revision(key, CompareOp::Equal, expected)
    }
}

/// Writes the leader key with this member's lease, only if no leader key exists.
fn create_leader(key: String, name: &str, lease: i64) -> Txn {
    Txn::new()
        .when([at_revision(&key, 0)])
        .and_then([TxnOp::put(
            key,
            name,
            Some(PutOptions::new().with_lease(lease)),
        )])
}

fn raw_of(kv: &etcd_client::KeyValue) -> RawKv {
    RawKv {
        value: String::from_utf8_lossy(kv.value()).into_owned(),
        mod_revision: kv.mod_revision(),
        create_revision: kv.create_revision(),
        lease: kv.lease(),
    }
}

#[async_trait]
impl Dcs for EtcdDcs {
    async fn cluster(&self) -> DcsResult<Cluster> {
        {
            let cache = self
                .cache
                .read()
                .map_err(|_| DcsError::Unavailable("cache poisoned".into()))?;
            if cache.ready {
                return Ok(Cluster::from_kvs(&self.keys, &cache.kvs, cache.revision));
            }
        }
        self.fresh_cluster().await
    }

    async fn fresh_cluster(&self) -> DcsResult<Cluster> {
        let (kvs, rev) = self.read_all().await?;
        Ok(Cluster::from_kvs(&self.keys, &kvs, rev))
    }

    async fn touch_member(&self, name: &str, member: &Member) -> DcsResult<()> {
        let lease = self.refresh_lease().await?;
        self.put(
            "put member",
            self.keys.member(name),
            member.to_json(),
            Some(lease),
        )
        .await
    }

    async fn delete_member(&self, name: &str) -> DcsResult<()> {
        self.delete("delete member", self.keys.member(name), false)
            .await
    }

    async fn try_initialize(&self) -> DcsResult<bool> {
        self.put_cas(self.keys.key(keys::INITIALIZE), String::new(), Some(0))
            .await
    }

    async fn set_initialize(&self, sysid: &str, create_new: bool) -> DcsResult<bool> {
        let expected = create_new.then_some(0);
        self.put_cas(self.keys.key(keys::INITIALIZE), sysid.to_string(), expected)
            .await
    }

    async fn cancel_initialize(&self) -> DcsResult<()> {
        self.delete("delete initialize", self.keys.key(keys::INITIALIZE), false)
            .await
    }

    async fn try_acquire_leader(&self, name: &str) -> DcsResult<bool> {
        let lease = self.refresh_lease().await?;
        let key = self.keys.leader();
        self.txn("acquire leader", create_leader(key, name, lease))
            .await
    }

    async fn update_leader(&self, name: &str) -> DcsResult<bool> {
        let lease = self.refresh_lease().await?;
        let key = self.keys.leader();
        let still_ours = self
            .txn(
                "update leader",
                Txn::new().when([
                    Compare::value(key.clone(), CompareOp::Equal, name),
                    Compare::lease(key.clone(), CompareOp::Equal, lease),
                ]),
            )
            .await?;
        if still_ours {
            return Ok(true);
        }
        // Our lease changed (agent restart or lease re-grant): move the key to the new lease
        // if it still names us; if the key vanished meanwhile, re-create it.
        let moved = self
            .txn(
                "update leader lease",
                Txn::new()
                    .when([Compare::value(key.clone(), CompareOp::Equal, name)])
                    .and_then([TxnOp::put(
                        key.clone(),
                        name,
                        Some(PutOptions::new().with_lease(lease)),
                    )]),
            )
            .await?;
        if moved {
            return Ok(true);
        }
        self.txn("re-create leader", create_leader(key, name, lease))
            .await
    }

    async fn release_leader(&self, name: &str) -> DcsResult<bool> {
        let key = self.keys.leader();
        self.txn(
            "release leader",
            Txn::new()
                .when([Compare::value(key.clone(), CompareOp::Equal, name)])
                .and_then([TxnOp::delete(key, None)]),
        )
        .await
    }

    async fn write_config(&self, config: &Value, expected: Option<i64>) -> DcsResult<bool> {
        self.put_cas(self.keys.key(keys::CONFIG), config.to_string(), expected)
            .await
    }

    async fn write_status(&self, status: &Status) -> DcsResult<()> {
        let v = serde_json::to_string(status).unwrap_or_default();
        self.put_cas(self.keys.key(keys::STATUS), v, None)
            .await
            .map(|_| ())
    }

    async fn write_history(&self, history: &Value) -> DcsResult<()> {
        self.put_cas(self.keys.key(keys::HISTORY), history.to_string(), None)
            .await
            .map(|_| ())
    }

    async fn write_failover(&self, failover: &Failover, expected: Option<i64>) -> DcsResult<bool> {
        let v = serde_json::to_string(failover).unwrap_or_else(|_| "{}".into());
        self.put_cas(self.keys.key(keys::FAILOVER), v, expected)
            .await
    }

    async fn write_raw(&self, rel: &str, value: &str, expected: Option<i64>) -> DcsResult<bool> {
        self.put_cas(self.keys.key(rel), value.to_string(), expected)
            .await
    }

    async fn delete_raw(&self, rel: &str, expected: i64) -> DcsResult<bool> {
        let key = self.keys.key(rel);
        self.txn(
            "compare-and-delete",
            Txn::new()
                .when([Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    expected,
                )])
                .and_then([TxnOp::delete(key, None)]),
        )
        .await
    }

    async fn cas_many(&self, writes: &[(String, String, i64)]) -> DcsResult<bool> {
        let mut cmps = Vec::new();
        let mut ops = Vec::new();
        for (rel, value, expected) in writes {
            let key = self.keys.key(rel);
            cmps.push(at_revision(&key, *expected));
            ops.push(TxnOp::put(key, value.clone(), None));
        }
        self.txn(
            "multi-key compare-and-swap",
            Txn::new().when(cmps).and_then(ops),
        )
        .await
    }

    async fn remove_cluster(&self) -> DcsResult<()> {
        self.delete("delete prefix", self.keys.prefix(), true).await
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }

    fn configure(&self, ttl: u64, retry_timeout: u64) {
        self.set_ttl(ttl);
        self.set_timeout(Duration::from_secs(retry_timeout.clamp(1, 60)));
    }

    fn lease_id(&self) -> Option<i64> {
        match self.lease_id.load(Ordering::Relaxed) {
            0 => None,
            id => Some(id),
        }
    }
}
