//! The watch-fed cache of the etcd DCS: one range read, then a watch from the next
//! revision; change notifications wake the HA loop.

use super::{raw_of, EtcdDcs};
use crate::dcs::error::DcsError;
use crate::dcs::keys;
use crate::dcs::traits::DcsResult;
use etcd_client::{EventType, WatchOptions};
use std::time::Duration;

use keys::wakes_loop;

/// Keeps the cache in sync: one range, then a watch from the next revision; on any error the
/// cache is marked not ready (reads go to etcd directly) and the cycle restarts.
pub(super) async fn cache_task(weak: std::sync::Weak<EtcdDcs>) {
    loop {
        let Some(dcs) = weak.upgrade() else { return };
        if let Err(e) = sync_once(&dcs).await {
            tracing::debug!(error = %e, "etcd watch interrupted");
        }
        if let Ok(mut c) = dcs.cache.write() {
            c.ready = false;
        }
        dcs.notify.send_modify(|n| *n += 1);
        drop(dcs);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn sync_once(dcs: &EtcdDcs) -> DcsResult<()> {
    let (kvs, rev) = dcs.read_all().await?;
    let opts = WatchOptions::new()
        .with_prefix()
        .with_start_revision(rev + 1);
    let (mut stream, member) = dcs
        .call_on("watch", |mut c| {
            let (prefix, opts) = (dcs.keys.prefix(), opts.clone());
            async move { c.watch(prefix, Some(opts)).await }
        })
        .await?;
    {
        let mut cache = dcs
            .cache
            .write()
            .map_err(|_| DcsError::Unavailable("cache poisoned".into()))?;
        cache.kvs = kvs;
        cache.revision = rev;
        cache.ready = true;
    }
    dcs.notify.send_modify(|n| *n += 1);
    loop {
        let msg = stream
            .message()
            .await
            .inspect_err(|_| dcs.members.failed(member))?;
        let Some(resp) = msg else {
            return Err(DcsError::Unavailable("watch stream closed".into()));
        };
        if resp.canceled() {
            return Err(DcsError::Unavailable(format!(
                "watch canceled: {}",
                resp.cancel_reason()
            )));
        }
        let mut wake = false;
        {
            let mut cache = dcs
                .cache
                .write()
                .map_err(|_| DcsError::Unavailable("cache poisoned".into()))?;
            if let Some(h) = resp.header() {
                cache.revision = cache.revision.max(h.revision());
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                if let Some(rel) = dcs.keys.relative(&key) {
                    // A member key appearing (first put on a fresh key) wakes the leader so
                    // it creates the new member's replication slot at once.
                    let created = ev.event_type() == EventType::Put
                        && kv.create_revision() == kv.mod_revision();
                    wake |= wakes_loop(rel) || (created && rel.starts_with(keys::MEMBERS));
                }
                match ev.event_type() {
                    EventType::Put => {
                        cache.kvs.insert(key, raw_of(kv));
                    }
                    EventType::Delete => {
                        cache.kvs.remove(&key);
                    }
                }
            }
        }
        if wake {
            dcs.notify.send_modify(|n| *n += 1);
        }
    }
}
