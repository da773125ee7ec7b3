//! Effects of the sync-mode steps decided by [`crate::ha::sync::leader_step`].

use super::driver::{CycleContext, Driver};
use super::tasks::recovery_for;
use crate::config::DynamicConfig;
use crate::dcs::{keys, SyncState};
use crate::ha::sync::prepromote_names;
use crate::postgres::RecoveryTarget;

impl Driver {
    /// Writes (or with `None` deletes) the `sync` key, guarded by the version this cycle saw.
    pub(super) async fn write_sync(&mut self, ctx: &CycleContext, standbys: Option<Vec<String>>) {
        let seen = ctx
            .cluster
            .as_ref()
            .and_then(|c| c.sync.as_ref())
            .map(|s| (s.version, s.value.members()));
        let result = match (standbys, seen) {
            (None, None) => return,
            (None, Some((version, _))) => {
                tracing::info!("synchronous mode is off: removing the sync key");
                self.sh.dcs.delete_raw(keys::SYNC, version).await
            }
            (Some(names), seen) => {
                let before = seen.as_ref().map(|(_, m)| m.clone()).unwrap_or_default();
                let state = SyncState {
                    leader: Some(self.sh.name()),
                    quorum: 0,
                    sync_standby: (!names.is_empty()).then(|| names.join(",")),
                    unreadable: false,
                };
                if names.len() > before.len() {
                    tracing::info!(
                        "Assigning synchronous standby status to {}",
                        py_list(&names)
                    );
                } else if names != before {
                    tracing::info!(
                        "Updating synchronous privilege temporarily from {} to {}",
                        py_list(&before),
                        py_list(&names)
                    );
                }
                let expected = seen.map(|(v, _)| v).unwrap_or(0);
                return self.put_sync(&state, expected).await;
            }
        };
        report(result);
    }

    /// Writes the `sync` key in quorum mode (leader, quorum, voters), CAS on the version seen.
    pub(super) async fn write_quorum(
        &mut self,
        ctx: &CycleContext,
        quorum: u64,
        voters: Vec<String>,
    ) {
        let seen = ctx.cluster.as_ref().and_then(|c| c.sync.as_ref());
        let state = SyncState {
            leader: Some(self.sh.name()),
            quorum,
            sync_standby: (!voters.is_empty()).then(|| voters.join(",")),
            unreadable: false,
        };
        if seen.is_none_or(|s| s.value.leader.is_none()) {
            tracing::info!("Enabled synchronous replication");
        }
        tracing::info!(
            "Setting leader to {}, quorum to {quorum} of ({})",
            self.sh.name(),
            voters.join(", ")
        );
        self.put_sync(&state, seen.map_or(0, |s| s.version)).await;
    }

    async fn put_sync(&mut self, state: &SyncState, expected: i64) {
        let value = serde_json::to_string(state).unwrap_or_default();
        report(
            self.sh
                .dcs
                .write_raw(keys::SYNC, &value, Some(expected))
                .await,
        );
    }

    /// The primary's flush LSN when the current managed `synchronous_standby_names` was
    /// first observed (one cycle after it was set, so the reload is in force): standbys
    /// that flushed this far are confirmed (Patroni's `_primary_flush_lsn`).
    pub(super) fn sync_names_mark(&mut self, primary_lsn: Option<u64>) -> Option<u64> {
        let current = self.sh.ctl.sync_names();
        match (&self.sync_mark, current, primary_lsn) {
            (Some((v, lsn)), Some(c), _) if *v == c => return Some(*lsn),
            (_, Some(c), Some(lsn)) => self.sync_mark = Some((c, lsn)),
            _ => self.sync_mark = None,
        }
        None
    }

    /// What a promotion sets first: the managed `synchronous_standby_names`
    /// ([`prepromote_names`]) and the recovery settings in force meanwhile.
    pub(super) fn prepromote(
        &self,
        ctx: &CycleContext,
        dynamic: &DynamicConfig,
    ) -> Option<(String, RecoveryTarget)> {
        let cluster = ctx.cluster.as_ref();
        let value = prepromote_names(dynamic, cluster, &self.sh.name())?;
        let following = self.sh.following();
        let recovery = recovery_for(&self.sh, cluster, following.as_deref(), dynamic);
        Some((value, recovery))
    }

    /// Renders the managed `synchronous_standby_names` and reloads PostgreSQL.
    pub(super) async fn set_sync_names(&mut self, ctx: &CycleContext, value: Option<String>) {
        let sh = &self.sh;
        match &value {
            Some(v) => tracing::info!("setting synchronous_standby_names to '{v}'"),
            None => tracing::info!("synchronous_standby_names returned to the configured value"),
        }
        sh.ctl.set_sync_names(value);
        let d = &ctx.dynamic;
        match sh
            .ctl
            .write_config(&d.parameters, d.pg_hba.as_deref(), None)
        {
            Ok(true) => {
                if let Err(e) = sh.ctl.reload().await {
                    tracing::error!("failed to reload postgres: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!("failed to write postgresql.conf: {e}"),
        }
    }
}

fn report<E: std::fmt::Display>(result: Result<bool, E>) {
    match result {
        Ok(true) => {}
        Ok(false) => tracing::info!("Synchronous replication key updated by someone else"),
        Err(e) => tracing::warn!("failed to update the sync key: {e}"),
    }
}

/// A name list the way Patroni's log lines print it: `['m2', 'm3']`.
fn py_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", quoted.join(", "))
}
