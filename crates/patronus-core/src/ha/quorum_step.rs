//! The leader's quorum-commit step: observe, plan with [`super::quorum::plan`], apply the
//! first step (Patroni's `_process_quorum_replication`).

use super::action::Action;
use super::observation::Observation;
use super::quorum::{plan_noting, Names, QuorumFacts, Step};
use super::sync::{candidates, quote_name, STRICT_PLACEHOLDER};
use crate::dcs::Cluster;

/// A parsed `synchronous_standby_names` as rendered by sync mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SyncNames {
    /// `ANY` (quorum) rather than priority (`FIRST` / `N (…)` / a single name).
    pub any: bool,
    /// How many must acknowledge.
    pub num: usize,
    /// Listed standbys.
    pub names: Names,
}

impl SyncNames {
    /// Parses the forms sync mode renders: ``, `a`, `N (a,b)`, `FIRST N (…)`, `ANY N (…)`.
    pub fn parse(value: &str) -> SyncNames {
        let v = value.trim();
        if v.is_empty() {
            return SyncNames::default();
        }
        let (any, rest) = match v.split_once(char::is_whitespace) {
            Some((w, r)) if w.eq_ignore_ascii_case("any") => (true, r.trim()),
            Some((w, r)) if w.eq_ignore_ascii_case("first") => (false, r.trim()),
            _ => (false, v),
        };
        let (num, list) = match rest.split_once('(') {
            Some((n, l)) => (
                n.trim().parse().unwrap_or(1),
                l.trim_end().trim_end_matches(')'),
            ),
            None => (1, rest),
        };
        let names: Names = split_names(list).into_iter().collect();
        SyncNames {
            any,
            num: num.min(names.len()),
            names,
        }
    }

    /// Renders `ANY num (a,b)` (quorum); empty when nobody is listed.
    pub(crate) fn render_any(num: usize, names: &Names) -> String {
        if names.is_empty() {
            return String::new();
        }
        let quoted: Vec<String> = names.iter().map(|n| quote_name(n)).collect();
        format!("ANY {num} ({})", quoted.join(","))
    }
}

/// Splits a name list at commas outside double quotes and unquotes each name.
fn split_names(list: &str) -> Vec<String> {
    let mut out = vec![];
    let (mut cur, mut quoted, mut chars) = (String::new(), false, list.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c if quoted || !c.is_whitespace() => cur.push(c),
            _ => {}
        }
    }
    out.push(cur);
    out.into_iter().filter(|n| !n.is_empty()).collect()
}

/// Standbys eligible for the quorum: the sync [`candidates`], `nofailover` members only
/// while fewer than `synchronous_node_count` others are available (they could acknowledge
/// but never take over). Returns (active, confirmed): confirmed are the listed ones that
/// PostgreSQL reports `quorum` and that have flushed the WAL written before they were listed.
pub(crate) fn active_standbys(
    o: &Observation,
    cluster: &Cluster,
    listed: &Names,
) -> (Names, Names) {
    let mut cands = candidates(o, cluster);
    let nofailover = |name: &str| cluster.member(name).is_some_and(|m| m.data.nofailover());
    cands.sort_by_key(|(s, _)| nofailover(&s.name));
    let wanted = o.config.synchronous_node_count.max(1) as usize;
    let (mut active, mut confirmed) = (Names::new(), Names::new());
    for (s, _) in cands {
        if nofailover(&s.name) && active.len() >= wanted {
            continue;
        }
        let caught_up = o.sync_names_since_lsn.is_some_and(|lsn| s.flush_lsn >= lsn);
        if listed.contains(&s.name) && s.sync_state == "quorum" && caught_up {
            confirmed.insert(s.name.clone());
        }
        active.insert(s.name.clone());
    }
    (active, confirmed)
}

/// The quorum-commit step the leader takes this cycle (none in the desired state or while
/// waiting for standbys to catch up), after the warnings it found ([`Action::Warn`]). Called
/// with the lock, as primary, in quorum mode.
pub fn leader_step(o: &Observation, cluster: &Cluster) -> Vec<Action> {
    let mut warnings = vec![];
    let step = next_step(o, cluster, &mut warnings);
    let warn = warnings.into_iter().map(|message| Action::Warn { message });
    warn.chain(step).collect()
}

/// The one step; what the leader should be warned of goes to `warnings`.
fn next_step(o: &Observation, cluster: &Cluster, warnings: &mut Vec<String>) -> Option<Action> {
    let key = cluster.sync.as_ref().map(|s| &s.value);
    let Some(key_leader) = key
        .filter(|k| !k.unreadable)
        .and_then(|k| k.leader.clone())
        .filter(|l| !l.is_empty())
    else {
        // "Enabled synchronous replication": the key names us with no voters yet.
        return Some(Action::WriteQuorum {
            quorum: 0,
            voters: vec![],
        });
    };
    let key = key?;
    let applied = o.sync_names_applied.as_deref().unwrap_or("");
    let current = SyncNames::parse(applied);
    let (active, confirmed) = active_standbys(o, cluster, &current.names);
    let voters: Names = key.members().into_iter().collect();
    if key_leader == o.name() {
        if let Some(step) = strict_or_empty(o, &current, &active, &voters, key.quorum as usize) {
            return step;
        }
    }
    let facts = QuorumFacts {
        leader: key_leader,
        quorum: key.quorum as usize,
        voters,
        numsync: current.num,
        sync: current.names.clone(),
        numsync_confirmed: confirmed.len(),
        active,
        wanted: o.config.synchronous_node_count.max(1) as usize,
        me: o.name().to_string(),
    };
    let steps = match plan_noting(&facts) {
        Ok((steps, notes)) => {
            warnings.extend(notes.iter().map(ToString::to_string));
            steps
        }
        Err(e) => {
            // Nothing is changed while the observed state cannot be repaired safely.
            warnings.push(format!("synchronous replication state left as it is: {e}"));
            return None;
        }
    };
    match steps.into_iter().next() {
        Some(Step::Sync { num, names }) => set_names(o, SyncNames::render_any(num, &names)),
        Some(Step::Quorum { quorum, voters, .. }) => Some(Action::WriteQuorum {
            quorum: quorum as u64,
            voters: voters.into_iter().collect(),
        }),
        Some(Step::Wait) => None,
        // In the desired state: a priority value left by `on` mode becomes ANY.
        None if !current.any && !current.names.is_empty() => {
            set_names(o, SyncNames::render_any(current.num, &current.names))
        }
        None => None,
    }
}

/// Strict mode with no eligible standby keeps commits waiting on the key's voters (or the
/// placeholder); non-strict mode with nobody at all clears the setting. Some(step) = the
/// resolver does not run this cycle.
fn strict_or_empty(
    o: &Observation,
    current: &SyncNames,
    active: &Names,
    voters: &Names,
    quorum: usize,
) -> Option<Option<Action>> {
    let strict = o.config.synchronous_mode_strict;
    if strict && active.is_empty() {
        let num = voters.len().saturating_sub(quorum).max(1);
        let value = if voters.is_empty() {
            format!("ANY 1 ({STRICT_PLACEHOLDER})")
        } else {
            SyncNames::render_any(num, voters)
        };
        return Some(set_names(o, value));
    }
    if !strict && active.is_empty() && voters.is_empty() && !current.names.is_empty() {
        return Some(set_names(o, String::new()));
    }
    None
}

fn set_names(o: &Observation, value: String) -> Option<Action> {
    (o.sync_names_applied.as_deref() != Some(value.as_str()))
        .then_some(Action::SetSyncNames { value: Some(value) })
}
