//! Where a replica streams from and where a new replica is cloned from: the `nostream`,
//! `replicatefrom` and `clonefrom` tags (Patroni's `_get_node_to_follow`,
//! `Cluster.get_clone_member` and the member-slot filters of `_get_members_slots`). One rule
//! in one place: the member itself, the leader (which slots to keep) and a cascading
//! upstream (which slots to keep for the members streaming from it) all ask this module.

use crate::dcs::cluster::MemberEntry;
use crate::dcs::model::Member;
use crate::dcs::Cluster;
use serde_json::{Map, Value};

/// Longest `replicatefrom` chain followed when looking for a loop back to the member.
const MAX_CHAIN: usize = 16;

/// What a member's tags say about streaming.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamTags {
    /// `nostream`: no streaming at all; WAL comes from `restore_command` only.
    pub nostream: bool,
    /// `replicatefrom`: the member to stream from instead of the leader (cascading).
    pub replicatefrom: Option<String>,
}

impl StreamTags {
    /// Reads the tags (`nostream` truthy as Patroni reads it; `replicatefrom` a non-empty
    /// string, anything else ignored).
    pub fn from_tags(tags: &Map<String, Value>) -> StreamTags {
        let data = Member {
            tags: tags.clone(),
            ..Member::default()
        };
        StreamTags::of(&data)
    }

    /// The tags of a member key.
    pub fn of(m: &Member) -> StreamTags {
        StreamTags {
            nostream: m.tag_view().nostream(),
            replicatefrom: m.tag_view().replicatefrom().map(str::to_string),
        }
    }
}

/// Why a `replicatefrom` member is not streamed from (the member falls back to the leader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The named member has no member key.
    Gone,
    /// Its member key says PostgreSQL is not running, or gives no address.
    NotRunning,
    /// Its own `replicatefrom` chain leads back to us.
    Loop,
}

impl Fallback {
    /// Words for the log line.
    pub fn reason(self) -> &'static str {
        match self {
            Fallback::Gone => "it is not a member of the cluster",
            Fallback::NotRunning => "it is not running",
            Fallback::Loop => "its replicatefrom chain leads back to this member",
        }
    }
}

/// True when the member key says PostgreSQL runs and gives an address to connect to.
fn serves(m: &MemberEntry) -> bool {
    m.data.is_running() && m.data.host_port().is_some()
}

/// Whether member `upstream` may serve `me` through `replicatefrom`: present, running,
/// addressable, and not itself (through its own chain) cascading from `me`.
pub fn cascade_check(cluster: &Cluster, me: &str, upstream: &str) -> Result<(), Fallback> {
    let m = cluster.member(upstream).ok_or(Fallback::Gone)?;
    if !serves(m) {
        return Err(Fallback::NotRunning);
    }
    let mut next = StreamTags::of(&m.data).replicatefrom;
    for _ in 0..MAX_CHAIN {
        let Some(name) = next else { return Ok(()) };
        if name == me {
            return Err(Fallback::Loop);
        }
        next = cluster
            .member(&name)
            .and_then(|m| StreamTags::of(&m.data).replicatefrom);
    }
    Ok(())
}

/// The member `me` streams from: nobody with `nostream`; the `replicatefrom` member while
/// it can serve (see [`cascade_check`]); otherwise `leader` (None when there is no leader
/// or `me` is the leader).
pub fn upstream(
    cluster: &Cluster,
    me: &str,
    tags: &StreamTags,
    leader: Option<&str>,
) -> Option<String> {
    if tags.nostream {
        return None;
    }
    let leader = leader.filter(|l| *l != me);
    match tags.replicatefrom.as_deref() {
        Some(r) if r != me && Some(r) != leader && cascade_check(cluster, me, r).is_ok() => {
            Some(r.to_string())
        }
        _ => leader.map(str::to_string),
    }
}

/// The member whose physical slot `m` uses: its [`upstream`] with the cluster's leader.
pub(crate) fn slot_holder(cluster: &Cluster, m: &MemberEntry) -> Option<String> {
    upstream(
        cluster,
        &m.name,
        &StreamTags::of(&m.data),
        cluster.leader_name(),
    )
}

/// The leader keeps a slot for `m` unless `m` does not stream (`nostream`) or streams from
/// another member (`replicatefrom`: an inactive slot on the leader would pin its WAL).
pub fn leader_keeps_slot_for(cluster: &Cluster, me: &str, m: &MemberEntry) -> bool {
    if m.name == me || StreamTags::of(&m.data).nostream {
        return false;
    }
    match slot_holder(cluster, m) {
        Some(holder) => holder == me,
        // No leader key this instant: keep what the member would use once there is one.
        None => true,
    }
}

/// A replica keeps a slot for `m` when `m` streams from it (`replicatefrom`).
pub(crate) fn replica_keeps_slot_for(cluster: &Cluster, me: &str, m: &MemberEntry) -> bool {
    m.name != me && slot_holder(cluster, m).as_deref() == Some(me)
}

/// The members `me` keeps a physical slot for: as the leader those of
/// [`leader_keeps_slot_for`], as a replica those of [`replica_keeps_slot_for`]; nobody
/// without `use_slots`.
pub fn slot_members<'a>(
    cluster: &'a Cluster,
    me: &str,
    as_leader: bool,
    use_slots: bool,
) -> Vec<&'a str> {
    if !use_slots {
        return vec![];
    }
    cluster
        .members
        .iter()
        .filter(|m| match as_leader {
            true => leader_keeps_slot_for(cluster, me, m),
            false => replica_keeps_slot_for(cluster, me, m),
        })
        .map(|m| m.name.as_str())
        .collect()
}

/// True when WAL reaches `me` by streaming from the leader, directly or through its
/// `replicatefrom` chain (Patroni's `get_slot_name_on_primary` is not None): false when `me`
/// or a member of the chain is `nostream`, or the chain loops. Without that feedback to the
/// primary a logical slot on `me` is unsafe, so such a replica keeps only permanent physical
/// slots, as in Patroni.
pub fn streams_from_primary(cluster: &Cluster, me: &str, tags: &StreamTags) -> bool {
    let mut seen = vec![me.to_string()];
    let mut tags = tags.clone();
    for _ in 0..MAX_CHAIN {
        if tags.nostream {
            return false;
        }
        let current = seen.last().cloned().unwrap_or_default();
        let next = tags
            .replicatefrom
            .as_deref()
            .filter(|r| *r != current)
            .and_then(|r| cluster.member(r));
        let Some(m) = next else { return true };
        if seen.contains(&m.name) {
            return false;
        }
        seen.push(m.name.clone());
        tags = StreamTags::of(&m.data);
    }
    true
}

/// A clone source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneSource {
    /// The leader.
    Leader(String),
    /// A running replica tagged `clonefrom`.
    Replica(String),
}

impl CloneSource {
    /// The member's name.
    pub fn name(&self) -> &str {
        match self {
            CloneSource::Leader(n) | CloneSource::Replica(n) => n,
        }
    }

    /// `leader 'n1'` / `replica 'n2'`, as in Patroni's "trying to bootstrap from …".
    pub fn describe(&self) -> String {
        match self {
            CloneSource::Leader(n) => format!("leader '{n}'"),
            CloneSource::Replica(n) => format!("replica '{n}'"),
        }
    }
}

/// Where `me` clones from: one of the running, addressable members tagged `clonefrom`
/// (other than `me` and the leader), else the leader. Patroni picks a candidate at random;
/// here the pick is a hash of `me`, so decisions stay reproducible while different new
/// members spread over the candidates. None without a leader.
pub fn clone_source(cluster: &Cluster, me: &str) -> Option<CloneSource> {
    let leader = cluster.leader_name()?;
    let candidates: Vec<&str> = cluster
        .members
        .iter()
        .filter(|m| m.name != me && m.name != leader)
        .filter(|m| m.data.tag_view().clonefrom() && serves(m))
        .map(|m| m.name.as_str())
        .collect();
    if candidates.is_empty() {
        return Some(CloneSource::Leader(leader.to_string()));
    }
    let pick = (fnv1a(me) % candidates.len() as u64) as usize;
    Some(CloneSource::Replica(candidates[pick].to_string()))
}

/// FNV-1a 64 of a name (stable across builds, unlike the std hasher).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
