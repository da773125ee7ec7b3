//! Synchronous replication in priority mode (`synchronous_mode: on`, docs/patroni-behaviour.md §2.15).
//!
//! The leader picks up to `synchronous_node_count` streaming standbys and keeps two things
//! consistent: PostgreSQL's `synchronous_standby_names` (who must acknowledge commits) and the
//! `sync` key (who may be promoted). The invariant that protects acknowledged writes: the key
//! never names a standby that PostgreSQL does not wait for. So a standby is *added* to the
//! GUC first and to the key only once `pg_stat_replication` reports it `sync`; it is
//! *removed* from the key first and from the GUC in a later cycle.
//!
//! Reference: patroni/ha.py `process_sync_replication`, patroni/postgresql/sync.py.

use super::action::Action;
use super::observation::{Observation, StandbyConn};
use crate::config::dynamic::SyncMode;
use crate::dcs::{Cluster, SyncState};

/// Name Patroni puts in `synchronous_standby_names` when strict mode has nobody to wait
/// for: no standby has it, so commits block until a real standby is added.
pub const STRICT_PLACEHOLDER: &str = "__patroni_strict_sync_replica_placeholder__";

/// `synchronous_standby_names` a member sets just before it promotes (None = leave it):
/// strict priority mode waits for [`STRICT_PLACEHOLDER`]; quorum mode waits, as the old
/// leader did, for `ANY n` of the key's other members (Patroni's
/// `process_sync_replication_prepromote`), so no commit is acknowledged by the new primary
/// alone before its first cycle as leader.
pub fn prepromote_names(
    config: &crate::config::DynamicConfig,
    cluster: Option<&Cluster>,
    me: &str,
) -> Option<String> {
    let strict = config.synchronous_mode_strict;
    match config.synchronous_mode {
        SyncMode::Off => None,
        SyncMode::On => strict.then(|| STRICT_PLACEHOLDER.to_string()),
        SyncMode::Quorum => {
            let key = cluster
                .and_then(|c| c.sync.as_ref())
                .map(|s| &s.value)
                .filter(|k| !k.unreadable && k.leader.as_deref().is_some_and(|l| !l.is_empty()));
            let mut members: Vec<String> = key.map(|k| k.members()).unwrap_or_default();
            members.extend(key.and_then(|k| k.leader.clone()));
            let quorum = key.map_or(0, |k| k.quorum as i64);
            let mut num = members.len() as i64 - quorum - 1;
            let before = members.len();
            members.retain(|m| !m.eq_ignore_ascii_case(me));
            if members.len() == before {
                num += 1;
            }
            let num = num.max(i64::from(strict));
            let names: super::quorum::Names = members.into_iter().collect();
            Some(if num < 1 {
                String::new()
            } else if names.is_empty() {
                format!("ANY 1 ({STRICT_PLACEHOLDER})")
            } else {
                super::quorum_step::SyncNames::render_any((num as usize).min(names.len()), &names)
            })
        }
    }
}

/// True when `synchronous_standby_names` (as sync mode renders it: `a`, `N (a,b)`,
/// `FIRST N (…)`, `ANY N (…)`) lists the standby `name`: PostgreSQL reports it `sync` (or
/// `quorum`) in `pg_stat_replication`. The simulator plays PostgreSQL's side with it.
pub fn names_list(value: &str, name: &str) -> bool {
    super::quorum_step::SyncNames::parse(value)
        .names
        .contains(name)
}

/// True when the dynamic config asks for synchronous replication.
pub(crate) fn mode_on(o: &Observation) -> bool {
    o.config.synchronous_mode != SyncMode::Off
}

/// True when the `sync` key is in force: sync mode on and a leader recorded in the key.
pub fn active(o: &Observation, cluster: &Cluster) -> bool {
    key_in_force(o.config.synchronous_mode, cluster)
}

/// The `sync` key restricts promotion under `mode`: sync mode on and either a leader
/// recorded in the key, or a key that exists but cannot be read (then [`promotable`] is
/// empty: no member is known to be synchronous, so nobody races on a sync basis).
pub fn key_in_force(mode: SyncMode, cluster: &Cluster) -> bool {
    mode != SyncMode::Off
        && cluster.sync.as_ref().is_some_and(|s| {
            s.value.unreadable || s.value.leader.as_deref().is_some_and(|l| !l.is_empty())
        })
}

/// Members the `sync` key allows to be promoted: its leader and its standbys (nobody when
/// the key is unreadable).
pub fn promotable(cluster: &Cluster) -> Vec<String> {
    let Some(s) = cluster.sync.as_ref().filter(|s| !s.value.unreadable) else {
        return vec![];
    };
    let mut out = s.value.members();
    out.extend(s.value.leader.clone().filter(|l| !l.is_empty()));
    out
}

/// In active sync mode, may `name` take over? (Always true when sync mode is not active.)
/// In quorum mode anybody may run (Patroni ≥ 4): the race's vote count decides
/// ([`super::eligibility::quorum_votes`]).
pub(crate) fn may_promote(o: &Observation, cluster: &Cluster, name: &str) -> bool {
    !active(o, cluster)
        || o.config.synchronous_mode == SyncMode::Quorum
        || promotable(cluster)
            .iter()
            .any(|m| m.eq_ignore_ascii_case(name))
}

/// Streaming standbys that may be listed in `synchronous_standby_names`: known running
/// members that are not `nosync`, each with its `sync_priority`; those lagging more than
/// `maximum_lag_on_syncnode` bytes (when > 0) behind the most advanced standby (or the
/// primary itself when there is only one) are left out, so a hung standby is replaced.
pub fn candidates<'a>(o: &'a Observation, cluster: &Cluster) -> Vec<(&'a StandbyConn, i64)> {
    let streaming: Vec<&StandbyConn> =
        o.pg.standbys
            .iter()
            .filter(|s| s.streaming && s.name != o.name())
            .collect();
    let max_lsn = if streaming.len() > 1 {
        streaming.iter().map(|s| s.flush_lsn).max().unwrap_or(0)
    } else {
        o.pg.lsn.unwrap_or(0)
    };
    let max_lag = o.config.maximum_lag_on_syncnode;
    streaming
        .into_iter()
        .filter(|s| max_lag <= 0 || max_lsn.saturating_sub(s.flush_lsn) <= max_lag as u64)
        .filter_map(|s| {
            let m = cluster.member(&s.name)?;
            let prio = m.data.sync_priority();
            (prio > 0 && m.data.is_running()).then_some((s, prio))
        })
        .collect()
}

/// Whether these healthy candidates make a failover possible (Patroni's
/// `is_failover_possible`): at least one, and in active quorum mode enough of them to reach
/// the key's `quorum` (one of them runs, the others vote).
pub(crate) fn failover_possible<'a, T: 'a>(
    o: &Observation,
    cluster: &Cluster,
    candidates: impl Iterator<Item = &'a T>,
) -> bool {
    let n = candidates.count();
    if o.config.synchronous_mode == SyncMode::Quorum && active(o, cluster) {
        let quorum = cluster.sync.as_ref().map_or(0, |s| s.value.quorum);
        return n >= 1 && (n as u64 - 1) >= quorum;
    }
    n >= 1
}

/// The standbys the leader wants synchronous in priority mode: the [`candidates`], best
/// first by `sync_priority`, then already-sync, then flush position; at most
/// `synchronous_node_count`. Returned sorted by name.
pub fn pick(o: &Observation, cluster: &Cluster) -> Vec<String> {
    let mut cands = candidates(o, cluster);
    cands.sort_by(|(a, pa), (b, pb)| {
        pb.cmp(pa)
            .then_with(|| (b.sync_state == "sync").cmp(&(a.sync_state == "sync")))
            .then_with(|| b.flush_lsn.cmp(&a.flush_lsn))
            .then_with(|| a.name.cmp(&b.name))
    });
    let count = o.config.synchronous_node_count.max(1) as usize;
    let mut names: Vec<String> = cands
        .into_iter()
        .take(count)
        .map(|(s, _)| s.name.clone())
        .collect();
    names.sort();
    names
}

/// `synchronous_standby_names` for these standbys in priority mode: `a`, or `N (a,b)`.
pub(crate) fn guc_value(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| quote_name(n)).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{n} ({})", quoted.join(",")),
    }
}

/// Double-quotes a standby name unless it is a plain lower-case identifier.
pub(crate) fn quote_name(n: &str) -> String {
    let plain = n
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && n.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if plain {
        n.to_string()
    } else {
        format!("\"{}\"", n.replace('"', "\"\""))
    }
}

/// The sync-replication step the leader takes this cycle (none in the desired state), after
/// the warnings the step found. Called only while we hold the lock and run as primary.
pub fn leader_step(o: &Observation, cluster: &Cluster) -> Vec<Action> {
    if mode_on(o) && o.config.synchronous_mode == SyncMode::Quorum {
        return super::quorum_step::leader_step(o, cluster);
    }
    priority_step(o, cluster).into_iter().collect()
}

/// The one step of `synchronous_mode: on` (or of turning sync mode off).
fn priority_step(o: &Observation, cluster: &Cluster) -> Option<Action> {
    let me = o.name();
    let key = cluster.sync.as_ref().map(|s| &s.value);
    if !mode_on(o) {
        return mode_off_step(o, key.is_some());
    }
    let strict = o.config.synchronous_mode_strict;
    if key.and_then(|k| k.leader.as_deref()) != Some(me) {
        return Some(claim_key(key, me, strict));
    }
    let current = key.map(|k| k.members()).unwrap_or_default();
    let picked = pick(o, cluster);
    if strict && picked.is_empty() {
        // Nobody can acknowledge: keep the key as it is and block commits.
        let names = if current.is_empty() {
            STRICT_PLACEHOLDER.to_string()
        } else {
            guc_value(&current)
        };
        return set_names_if_changed(o, names);
    }
    // Coming from quorum mode (`ANY k`), no voter is known to hold every acknowledged
    // commit on its own: the key is emptied before PostgreSQL switches to priority.
    let from_quorum = o
        .sync_names_applied
        .as_deref()
        .is_some_and(|v| super::quorum_step::SyncNames::parse(v).any);
    let keep: Vec<String> = current
        .iter()
        .filter(|n| picked.contains(n) && !from_quorum)
        .cloned()
        .collect();
    if keep.len() < current.len() {
        return Some(Action::WriteSync {
            standbys: Some(keep),
        });
    }
    if let Some(step) = set_names_if_changed(o, guc_value(&picked)) {
        return Some(step);
    }
    add_acknowledging(o, &picked, &current)
}

/// Synchronous mode off: the `sync` key is deleted, then `synchronous_standby_names` cleared.
fn mode_off_step(o: &Observation, key_exists: bool) -> Option<Action> {
    if key_exists {
        return Some(Action::WriteSync { standbys: None });
    }
    if o.sync_names_applied.is_some() {
        return Some(Action::SetSyncNames { value: None });
    }
    None
}

/// Just promoted (or the key is new): record ourselves as the sync leader. Strict mode
/// keeps the former standbys so that nobody else looks promotable meanwhile.
fn claim_key(key: Option<&SyncState>, me: &str, strict: bool) -> Action {
    let keep = if strict {
        key.map(|k| k.members())
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n != me)
            .collect()
    } else {
        vec![]
    };
    Action::WriteSync {
        standbys: Some(keep),
    }
}

/// Picked standbys PostgreSQL reports as `sync` join the key (only once they acknowledge
/// commits may they be promoted without loss).
fn add_acknowledging(o: &Observation, picked: &[String], current: &[String]) -> Option<Action> {
    let acknowledging: Vec<String> = picked
        .iter()
        .filter(|n| {
            o.pg.standbys
                .iter()
                .any(|s| &&s.name == n && s.sync_state == "sync")
        })
        .cloned()
        .collect();
    if acknowledging.iter().any(|n| !current.contains(n)) {
        let mut next = current.to_vec();
        next.extend(acknowledging.into_iter().filter(|n| !current.contains(n)));
        next.sort();
        return Some(Action::WriteSync {
            standbys: Some(next),
        });
    }
    None
}

fn set_names_if_changed(o: &Observation, value: String) -> Option<Action> {
    (o.sync_names_applied.as_deref() != Some(value.as_str()))
        .then_some(Action::SetSyncNames { value: Some(value) })
}
