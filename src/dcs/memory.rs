//! A strict in-memory twin of the etcd DCS for unit and driver tests only (never a fallback).
//!
//! It enforces what etcd enforces: revisions, create-only and `mod_revision` CAS, leases that
//! expire and take their keys with them. It can be told to fail (simulating an outage).

use super::cluster::{Cluster, RawKv};
use super::error::DcsError;
use super::keys::{self, Keys};
use super::model::{Failover, Member, Status};
use super::traits::{Dcs, DcsResult};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
struct Store {
    revision: i64,
    kvs: BTreeMap<String, RawKv>,
    /// lease id -> expiry
    leases: BTreeMap<i64, Instant>,
    next_lease: i64,
    /// Leases that ran out since [`MemoryDcs::expire_now`] last took them.
    expired: Vec<i64>,
}

impl Store {
    /// Drops the leases that ran out with their keys (their ids are kept in `expired`).
    fn expire(&mut self, now: Instant) {
        let dead: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, e)| **e <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &dead {
            self.leases.remove(id);
            let before = self.kvs.len();
            self.kvs.retain(|_, kv| kv.lease != *id);
            if self.kvs.len() != before {
                self.revision += 1;
            }
        }
        self.expired.extend(dead);
    }

    /// What a watcher of the HA loop reacts to (the keys of [`keys::wakes_loop`] and the
    /// set of member keys, as the etcd watch): compared before and after each operation.
    fn watched(&self, k: &Keys) -> Vec<(String, i64)> {
        let entry = |(key, kv): (&String, &RawKv)| {
            let rel = k.relative(key)?;
            if keys::wakes_loop(rel) {
                Some((rel.to_string(), kv.mod_revision))
            } else if rel.starts_with(keys::MEMBERS) {
                Some((rel.to_string(), kv.create_revision))
            } else {
                None
            }
        };
        self.kvs.iter().filter_map(entry).collect()
    }

    fn put(&mut self, key: &str, value: &str, lease: i64) {
        self.revision += 1;
        let create = self
            .kvs
            .get(key)
            .map_or(self.revision, |kv| kv.create_revision);
        self.kvs.insert(
            key.to_string(),
            RawKv {
                value: value.to_string(),
                mod_revision: self.revision,
                create_revision: create,
                lease,
            },
        );
    }
}

/// In-memory DCS shared by several simulated agents (clone the `Arc<Shared>`).
pub struct MemoryDcs {
    store: Arc<Mutex<Store>>,
    keys: Keys,
    ttl: Mutex<Duration>,
    lease: Mutex<Option<i64>>,
    failing: Arc<AtomicBool>,
    /// Shared by every client of the store, as the etcd watch: it changes when a key that
    /// wakes the HA loop changes.
    notify: Arc<tokio::sync::watch::Sender<u64>>,
}

impl MemoryDcs {
    /// A new empty store with one client on it.
    pub fn new(keys: Keys, ttl: Duration) -> Self {
        let (notify, _) = tokio::sync::watch::channel(0);
        MemoryDcs {
            store: Arc::new(Mutex::new(Store::default())),
            keys,
            ttl: Mutex::new(ttl),
            lease: Mutex::new(None),
            failing: Arc::new(AtomicBool::new(false)),
            notify: Arc::new(notify),
        }
    }

    /// Another client (own lease) on the same store.
    pub fn peer(&self) -> Self {
        MemoryDcs {
            store: self.store.clone(),
            keys: self.keys.clone(),
            ttl: Mutex::new(self.ttl()),
            lease: Mutex::new(None),
            failing: self.failing.clone(),
            notify: self.notify.clone(),
        }
    }

    fn ttl(&self) -> Duration {
        *self.ttl.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When lease `id` runs out, unless refreshed (None once it has).
    pub fn lease_expiry(&self, id: i64) -> Option<Instant> {
        let s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        s.leases.get(&id).copied()
    }

    /// Drops the leases that ran out (with their keys) now, as etcd does on its own: the ids
    /// of the leases that expired since the last call (here or in any client's operation).
    pub fn expire_now(&self) -> Vec<i64> {
        let taken = self.with(|s| {
            s.expire(Instant::now());
            std::mem::take(&mut s.expired)
        });
        taken.unwrap_or_default()
    }

    /// Makes every operation fail (true) or succeed again (false), for all peers.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> DcsResult<T> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(DcsError::Unavailable("simulated outage".into()));
        }
        let mut s = self
            .store
            .lock()
            .map_err(|_| DcsError::Unavailable("poisoned".into()))?;
        let before = s.watched(&self.keys);
        s.expire(Instant::now());
        let r = f(&mut s);
        let changed = s.watched(&self.keys) != before;
        drop(s);
        if changed {
            self.notify.send_modify(|n| *n += 1);
        }
        Ok(r)
    }

    fn refresh_lease(&self, s: &mut Store) -> i64 {
        let mut l = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some(id) = *l {
            if let Some(exp) = s.leases.get_mut(&id) {
                *exp = now + self.ttl();
                return id;
            }
        }
        s.next_lease += 1;
        let id = s.next_lease;
        s.leases.insert(id, now + self.ttl());
        *l = Some(id);
        id
    }

    fn cas(&self, rel: &str, value: &str, expected: Option<i64>) -> DcsResult<bool> {
        let key = self.keys.key(rel);
        self.with(|s| {
            let ok = match (expected, s.kvs.get(&key)) {
                (None, _) => true,
                (Some(0), existing) => existing.is_none(),
                (Some(v), Some(kv)) => kv.mod_revision == v,
                (Some(_), None) => false,
            };
            if ok {
                s.put(&key, value, 0);
            }
            ok
        })
    }
}

#[async_trait]
impl Dcs for MemoryDcs {
    async fn cluster(&self) -> DcsResult<Cluster> {
        self.fresh_cluster().await
    }

    async fn fresh_cluster(&self) -> DcsResult<Cluster> {
        let keys = self.keys.clone();
        self.with(|s| Cluster::from_kvs(&keys, &s.kvs, s.revision))
    }

    async fn touch_member(&self, name: &str, member: &Member) -> DcsResult<()> {
        let key = self.keys.member(name);
        let json = member.to_json();
        self.with(|s| {
            let lease = self.refresh_lease(s);
            s.put(&key, &json, lease);
        })
    }

    async fn delete_member(&self, name: &str) -> DcsResult<()> {
        let key = self.keys.member(name);
        self.with(|s| {
            if s.kvs.remove(&key).is_some() {
                s.revision += 1;
            }
        })
    }

    async fn try_initialize(&self) -> DcsResult<bool> {
        self.cas(keys::INITIALIZE, "", Some(0))
    }

    async fn set_initialize(&self, sysid: &str, create_new: bool) -> DcsResult<bool> {
        self.cas(keys::INITIALIZE, sysid, create_new.then_some(0))
    }

    async fn cancel_initialize(&self) -> DcsResult<()> {
        let key = self.keys.key(keys::INITIALIZE);
        self.with(|s| {
            s.kvs.remove(&key);
            s.revision += 1;
        })
    }

    async fn try_acquire_leader(&self, name: &str) -> DcsResult<bool> {
        let key = self.keys.leader();
        self.with(|s| {
            let lease = self.refresh_lease(s);
            if s.kvs.contains_key(&key) {
                return false;
            }
            s.put(&key, name, lease);
            true
        })
    }

    async fn update_leader(&self, name: &str) -> DcsResult<bool> {
        let key = self.keys.leader();
        self.with(|s| {
            let lease = self.refresh_lease(s);
            match s.kvs.get(&key) {
                Some(kv) if kv.value == name && kv.lease == lease => true,
                Some(kv) if kv.value == name => {
                    s.put(&key, name, lease);
                    true
                }
                Some(_) => false,
                None => {
                    s.put(&key, name, lease);
                    true
                }
            }
        })
    }

    async fn release_leader(&self, name: &str) -> DcsResult<bool> {
        let key = self.keys.leader();
        self.with(|s| {
            if s.kvs.get(&key).is_some_and(|kv| kv.value == name) {
                s.kvs.remove(&key);
                s.revision += 1;
                true
            } else {
                false
            }
        })
    }

    async fn write_config(&self, config: &Value, expected: Option<i64>) -> DcsResult<bool> {
        self.cas(keys::CONFIG, &config.to_string(), expected)
    }

    async fn write_status(&self, status: &Status) -> DcsResult<()> {
        let v = serde_json::to_string(status).unwrap_or_default();
        self.cas(keys::STATUS, &v, None).map(|_| ())
    }

    async fn write_history(&self, history: &Value) -> DcsResult<()> {
        self.cas(keys::HISTORY, &history.to_string(), None)
            .map(|_| ())
    }

    async fn write_failover(&self, failover: &Failover, expected: Option<i64>) -> DcsResult<bool> {
        let v = serde_json::to_string(failover).unwrap_or_default();
        self.cas(keys::FAILOVER, &v, expected)
    }

    async fn write_raw(&self, rel: &str, value: &str, expected: Option<i64>) -> DcsResult<bool> {
        self.cas(rel, value, expected)
    }

    async fn delete_raw(&self, rel: &str, expected: i64) -> DcsResult<bool> {
        let key = self.keys.key(rel);
        self.with(|s| {
            if s.kvs
                .get(&key)
                .is_some_and(|kv| kv.mod_revision == expected)
            {
                s.kvs.remove(&key);
                s.revision += 1;
                true
            } else {
                false
            }
        })
    }

    async fn cas_many(&self, writes: &[(String, String, i64)]) -> DcsResult<bool> {
        let full: Vec<(String, String, i64)> = writes
            .iter()
            .map(|(r, v, e)| (self.keys.key(r), v.clone(), *e))
            .collect();
        self.with(|s| {
            let ok = full.iter().all(|(k, _, e)| match s.kvs.get(k) {
                None => *e == 0,
                Some(kv) => kv.mod_revision == *e,
            });
            if ok {
                for (k, v, _) in &full {
                    s.put(k, v, 0);
                }
            }
            ok
        })
    }

    async fn remove_cluster(&self) -> DcsResult<()> {
        let prefix = self.keys.prefix();
        self.with(|s| {
            s.kvs.retain(|k, _| !k.starts_with(&prefix));
            s.revision += 1;
        })
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }

    fn lease_id(&self) -> Option<i64> {
        *self.lease.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn configure(&self, ttl: u64, _retry_timeout: u64) {
        if let Ok(mut t) = self.ttl.lock() {
            *t = Duration::from_secs(ttl);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (MemoryDcs, MemoryDcs) {
        let a = MemoryDcs::new(Keys::new("/service", "t"), Duration::from_millis(200));
        let b = a.peer();
        (a, b)
    }

    #[tokio::test]
    async fn leader_race_has_one_winner_and_lease_expiry_frees_it() {
        let (a, b) = pair();
        assert!(a.try_acquire_leader("a").await.unwrap());
        assert!(!b.try_acquire_leader("b").await.unwrap());
        assert!(!b.update_leader("b").await.unwrap());
        assert!(a.update_leader("a").await.unwrap());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if b.try_acquire_leader("b").await.unwrap() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(b.cluster().await.unwrap().leader_name(), Some("b"));
        assert!(!a.release_leader("a").await.unwrap());
        assert!(b.release_leader("b").await.unwrap());
    }

    #[tokio::test]
    async fn cas_and_initialize_are_strict() {
        let (a, b) = pair();
        assert!(a.try_initialize().await.unwrap());
        assert!(!b.try_initialize().await.unwrap());
        assert!(a
            .write_config(&serde_json::json!({"ttl": 30}), Some(0))
            .await
            .unwrap());
        let v = a.cluster().await.unwrap().config.unwrap().version;
        assert!(b
            .write_config(&serde_json::json!({"ttl": 40}), Some(v))
            .await
            .unwrap());
        assert!(!a
            .write_config(&serde_json::json!({"ttl": 50}), Some(v))
            .await
            .unwrap());
        a.set_failing(true);
        assert!(b.cluster().await.is_err());
    }
}
