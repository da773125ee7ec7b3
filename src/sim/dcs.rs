//! The DCS port of a simulated member: a client of the shared in-memory store
//! ([`MemoryDcs`]: revisions, create-only and CAS writes, leases that expire with their
//! keys, a watch), behind the member's link. Partitioned, every call fails after the
//! client's deadline; with a stale cache, reads still return the view of the moment of the
//! partition while writes fail.

use super::model::{DcsLink, EventKind};
use super::world::World;
use crate::dcs::memory::MemoryDcs;
use crate::dcs::{Cluster, Dcs, DcsError, DcsResult, Failover, Member, Status};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The DCS as generation `gen` of member `i`'s agent reaches it.
pub struct SimDcs {
    world: Arc<World>,
    i: usize,
    gen: u64,
    client: MemoryDcs,
}

impl SimDcs {
    /// A client with its own lease on the world's store.
    pub fn new(world: Arc<World>, i: usize, gen: u64) -> SimDcs {
        let client = world.store.peer();
        SimDcs {
            world,
            i,
            gen,
            client,
        }
    }

    /// The member's link, once its agent may act.
    async fn link(&self) -> DcsLink {
        self.world.gate(self.i, self.gen).await;
        self.world.lock().members[self.i].link.clone()
    }

    /// A call over a broken link: it fails at the client's deadline (`retry_timeout`
    /// clamped to 1..=10 s).
    async fn unreachable<T>(&self) -> DcsResult<T> {
        let ms = self.world.cfg.dcs_timeout_ms();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Err(DcsError::Timeout("the DCS is partitioned away".into()))
    }

    /// Fails unless the link is up.
    async fn up(&self) -> DcsResult<()> {
        match self.link().await {
            DcsLink::Up => Ok(()),
            _ => self.unreachable().await,
        }
    }

    /// Records the lease the client holds and, for a leader-key change, the event.
    fn after<T>(&self, result: DcsResult<T>, event: Option<EventKind>) -> DcsResult<T> {
        let mut st = self.world.lock();
        st.members[self.i].lease = self.client.lease_id();
        if let (Ok(_), Some(kind)) = (&result, event) {
            self.world.event(&mut st, self.i, kind);
        }
        result
    }
}

#[async_trait]
impl Dcs for SimDcs {
    async fn cluster(&self) -> DcsResult<Cluster> {
        match self.link().await {
            DcsLink::Up => self.client.cluster().await,
            DcsLink::Stale(view) => Ok(*view),
            DcsLink::Down => self.unreachable().await,
        }
    }

    async fn fresh_cluster(&self) -> DcsResult<Cluster> {
        self.up().await?;
        self.client.fresh_cluster().await
    }

    async fn touch_member(&self, name: &str, member: &Member) -> DcsResult<()> {
        self.up().await?;
        let r = self.client.touch_member(name, member).await;
        self.after(r, None)
    }

    async fn delete_member(&self, name: &str) -> DcsResult<()> {
        self.up().await?;
        self.client.delete_member(name).await
    }

    async fn try_initialize(&self) -> DcsResult<bool> {
        self.up().await?;
        self.client.try_initialize().await
    }

    async fn set_initialize(&self, sysid: &str, create_new: bool) -> DcsResult<bool> {
        self.up().await?;
        self.client.set_initialize(sysid, create_new).await
    }

    async fn cancel_initialize(&self) -> DcsResult<()> {
        self.up().await?;
        self.client.cancel_initialize().await
    }

    async fn try_acquire_leader(&self, name: &str) -> DcsResult<bool> {
        self.up().await?;
        let won = self.client.try_acquire_leader(name).await;
        let event = matches!(won, Ok(true)).then_some(EventKind::LockAcquired);
        self.after(won, event)
    }

    async fn update_leader(&self, name: &str) -> DcsResult<bool> {
        self.up().await?;
        let r = self.client.update_leader(name).await;
        self.after(r, None)
    }

    async fn release_leader(&self, name: &str) -> DcsResult<bool> {
        self.up().await?;
        let released = self.client.release_leader(name).await;
        let event = matches!(released, Ok(true)).then_some(EventKind::LockReleased);
        self.after(released, event)
    }

    async fn write_config(&self, config: &Value, expected: Option<i64>) -> DcsResult<bool> {
        self.up().await?;
        self.client.write_config(config, expected).await
    }

    async fn write_status(&self, status: &Status) -> DcsResult<()> {
        self.up().await?;
        self.client.write_status(status).await
    }

    async fn write_history(&self, history: &Value) -> DcsResult<()> {
        self.up().await?;
        self.client.write_history(history).await
    }

    async fn write_failover(&self, failover: &Failover, expected: Option<i64>) -> DcsResult<bool> {
        self.up().await?;
        self.client.write_failover(failover, expected).await
    }

    async fn write_raw(&self, rel: &str, value: &str, expected: Option<i64>) -> DcsResult<bool> {
        self.up().await?;
        self.client.write_raw(rel, value, expected).await
    }

    async fn delete_raw(&self, rel: &str, expected: i64) -> DcsResult<bool> {
        self.up().await?;
        self.client.delete_raw(rel, expected).await
    }

    async fn cas_many(&self, writes: &[(String, String, i64)]) -> DcsResult<bool> {
        self.up().await?;
        self.client.cas_many(writes).await
    }

    async fn remove_cluster(&self) -> DcsResult<()> {
        self.up().await?;
        self.client.remove_cluster().await
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.client.subscribe()
    }

    fn lease_id(&self) -> Option<i64> {
        self.client.lease_id()
    }

    fn configure(&self, ttl: u64, retry_timeout: u64) {
        self.client.configure(ttl, retry_timeout);
    }
}
