//! The domain-level DCS interface the agent, API and CLI use.

use super::cluster::Cluster;
use super::error::DcsError;
use super::model::{Failover, Member, Status};
use async_trait::async_trait;
use serde_json::Value;

/// Result of DCS operations.
pub type DcsResult<T> = Result<T, DcsError>;

/// Domain operations on one cluster's keys (docs/patroni-behaviour.md §1).
///
/// `try_*` operations may legitimately lose and return `Ok(false)`.
#[async_trait]
pub trait Dcs: Send + Sync {
    /// Cluster view from the watch-fed cache (a direct read when the cache is not ready).
    async fn cluster(&self) -> DcsResult<Cluster>;
    /// A fresh linearizable read of the whole cluster prefix.
    async fn fresh_cluster(&self) -> DcsResult<Cluster>;
    /// Publishes our member key on our lease (refreshing the lease).
    async fn touch_member(&self, name: &str, member: &Member) -> DcsResult<()>;
    /// Deletes a member key.
    async fn delete_member(&self, name: &str) -> DcsResult<()>;
    /// Create-only put of `initialize = ""`: true if we won the bootstrap race.
    async fn try_initialize(&self) -> DcsResult<bool>;
    /// Writes the system identifier into `initialize`; with `create_new` only when the key
    /// does not exist (false when somebody created it first).
    async fn set_initialize(&self, sysid: &str, create_new: bool) -> DcsResult<bool>;
    /// Deletes `initialize` after a failed bootstrap.
    async fn cancel_initialize(&self) -> DcsResult<()>;
    /// Creates the leader key on our lease if nobody holds it.
    async fn try_acquire_leader(&self, name: &str) -> DcsResult<bool>;
    /// Refreshes our leader key; false if somebody else holds it.
    async fn update_leader(&self, name: &str) -> DcsResult<bool>;
    /// Deletes the leader key if it still names us.
    async fn release_leader(&self, name: &str) -> DcsResult<bool>;
    /// Writes `config`; `expected` = Some(version) for CAS (0 = create-only), None = plain put.
    async fn write_config(&self, config: &Value, expected: Option<i64>) -> DcsResult<bool>;
    /// Writes `status`.
    async fn write_status(&self, status: &Status) -> DcsResult<()>;
    /// Writes `history`.
    async fn write_history(&self, history: &Value) -> DcsResult<()>;
    /// Writes `failover`; `expected` = Some(version) for CAS (0 = create-only), None = plain put.
    async fn write_failover(&self, failover: &Failover, expected: Option<i64>) -> DcsResult<bool>;
    /// Writes one of our extension keys (relative path) with optional CAS.
    async fn write_raw(&self, rel: &str, value: &str, expected: Option<i64>) -> DcsResult<bool>;
    /// Deletes one key (relative path) if its `mod_revision` is still `expected`.
    async fn delete_raw(&self, rel: &str, expected: i64) -> DcsResult<bool>;
    /// Writes several keys (relative paths) in one transaction, each guarded by its expected
    /// `mod_revision` (0 = must not exist). False when any guard fails; nothing is written then.
    async fn cas_many(&self, writes: &[(String, String, i64)]) -> DcsResult<bool>;
    /// Deletes every key of the cluster.
    async fn remove_cluster(&self) -> DcsResult<()>;
    /// A receiver that changes whenever a key relevant to the HA loop changes.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Our lease id (None if we hold none).
    fn lease_id(&self) -> Option<i64>;
    /// Applies the cluster's `ttl` (lease TTL) and `retry_timeout` (operation deadline).
    fn configure(&self, _ttl: u64, _retry_timeout: u64) {}
}
