//! Which replication slots a member keeps, creates, drops and advances (Patroni's
//! `SlotsHandler` rules), as pure functions: the executor only lists the slots and runs
//! the SQL this module asks for.
//!
//! * Primary: one physical slot per other member (unless `nostream`), the slots of departed
//!   members retained for `member_slots_ttl`, and the permanent slots of the dynamic `slots`.
//! * Replica: permanent physical slots (advanced to the position the leader publishes in
//!   `status.slots`), permanent logical slots (copied from the leader when missing, then
//!   advanced), and the slots of members that cascade from it.
//! * Any other slot is dropped, unless an `ignore_slots` entry matches it or it is active.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A WAL position in bytes.
pub type Lsn = u64;

/// The type of a slot, with what a logical slot decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotKind {
    /// A physical slot.
    Physical,
    /// A logical slot of a database, decoded by an output plugin.
    Logical {
        /// Database the slot belongs to.
        database: String,
        /// Output plugin (`pgoutput`, `test_decoding`, …).
        plugin: String,
    },
}

impl SlotKind {
    /// `physical` or `logical`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SlotKind::Physical => "physical",
            SlotKind::Logical { .. } => "logical",
        }
    }
}

/// A slot that should exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSpec {
    /// Slot name.
    pub name: String,
    /// Its type.
    pub kind: SlotKind,
}

/// A slot present on the local instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSlot {
    /// Slot name.
    pub name: String,
    /// Its type.
    pub kind: SlotKind,
    /// Physical: `restart_lsn`; logical: `confirmed_flush_lsn`.
    pub position: Option<Lsn>,
    /// A connection uses it (an active slot is never dropped, as in Patroni).
    pub active: bool,
}

/// One `ignore_slots` entry: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRule {
    /// Slot name.
    pub name: Option<String>,
    /// `physical` or `logical`.
    pub slot_type: Option<String>,
    /// Database (logical slots).
    pub database: Option<String>,
    /// Plugin (logical slots).
    pub plugin: Option<String>,
}

impl IgnoreRule {
    /// Whether this rule matches `slot`.
    pub fn matches(&self, slot: &LocalSlot) -> bool {
        let (db, plugin) = match &slot.kind {
            SlotKind::Physical => (None, None),
            SlotKind::Logical { database, plugin } => (Some(database), Some(plugin)),
        };
        let field = |want: &Option<String>, have: Option<&String>| {
            want.as_ref().is_none_or(|w| have == Some(w))
        };
        field(&self.name, Some(&slot.name))
            && self
                .slot_type
                .as_deref()
                .is_none_or(|t| t == slot.kind.type_name())
            && field(&self.database, db)
            && field(&self.plugin, plugin)
    }
}

/// Whether `name` is a valid slot name (Patroni's rule: `[a-z0-9_]`, 1 to 63 characters).
pub(crate) fn valid_slot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Reads the dynamic `slots` mapping; invalid entries are left out with a reason.
pub fn permanent_slots(map: &Map<String, Value>) -> (Vec<SlotSpec>, Vec<String>) {
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for (name, def) in map {
        match permanent_slot(name, def) {
            Ok(s) => specs.push(s),
            Err(e) => errors.push(format!("slots.{name}: {e}")),
        }
    }
    (specs, errors)
}

fn permanent_slot(name: &str, def: &Value) -> Result<SlotSpec, String> {
    if !valid_slot_name(name) {
        return Err("invalid slot name (only a-z, 0-9 and _, at most 63)".into());
    }
    let empty = Map::new();
    let def = match def {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err("expected a mapping".into()),
    };
    let text = |k: &str| def.get(k).and_then(Value::as_str).map(str::to_string);
    let (database, plugin) = (text("database"), text("plugin"));
    let default_type = if database.is_some() && plugin.is_some() {
        "logical"
    } else {
        "physical"
    };
    let kind = match text("type").as_deref().unwrap_or(default_type) {
        "physical" => SlotKind::Physical,
        "logical" => match (database, plugin) {
            (Some(database), Some(plugin)) if !database.is_empty() && !plugin.is_empty() => {
                SlotKind::Logical { database, plugin }
            }
            _ => return Err("a logical slot needs database and plugin".into()),
        },
        other => return Err(format!("type {other:?} is neither physical nor logical")),
    };
    Ok(SlotSpec {
        name: name.to_string(),
        kind,
    })
}

/// Reads the dynamic `ignore_slots` list; entries that are not mappings are left out.
pub fn ignore_rules(items: &[Value]) -> Vec<IgnoreRule> {
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|m| {
            let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
            IgnoreRule {
                name: text("name"),
                slot_type: text("type"),
                database: text("database"),
                plugin: text("plugin"),
            }
        })
        .collect()
}

/// The role the slot rules apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRole {
    /// The leader (running as primary).
    Primary,
    /// A running replica.
    Replica,
}

/// What a member knows when it plans its slots.
#[derive(Debug, Clone)]
pub struct SlotFacts<'a> {
    /// Primary or replica.
    pub role: SlotRole,
    /// Primary: the physical slots of the other members (and retained departed ones);
    /// replica: the slots of the members that cascade from it. Empty without `use_slots`.
    pub member_slots: &'a [String],
    /// The permanent slots.
    pub permanent: &'a [SlotSpec],
    /// `ignore_slots`.
    pub ignore: &'a [IgnoreRule],
    /// Slots present locally.
    pub local: &'a [LocalSlot],
    /// Positions the leader publishes in `status.slots`.
    pub leader_positions: &'a BTreeMap<String, Lsn>,
    /// Replica: replay position (a slot is never advanced past it).
    pub replay_lsn: Option<Lsn>,
    /// This member's own slot name (never a slot on itself).
    pub own_slot: &'a str,
}

/// What to do this cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotPlan {
    /// Slots to drop, with why (`unknown` or a mismatch).
    pub drop: Vec<(LocalSlot, DropReason)>,
    /// Slots to create here (logical ones on the primary only).
    pub create: Vec<SlotSpec>,
    /// Replica: logical slots to copy from the leader (then restart).
    pub copy: Vec<SlotSpec>,
    /// Replica: slots to advance to a position.
    pub advance: Vec<(SlotSpec, Lsn)>,
}

/// Why a slot is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a member's, not permanent, not ignored.
    Unknown,
    /// Its type, database or plugin differs from the permanent definition.
    Mismatch,
}

/// The slots this member should have, by name.
fn expected(f: &SlotFacts) -> BTreeMap<String, SlotSpec> {
    let mut want = BTreeMap::new();
    for p in f.permanent {
        let on_replica = match p.kind {
            SlotKind::Physical => true,
            // A replica only copies a logical slot the leader has (and publishes).
            SlotKind::Logical { .. } => f.leader_positions.contains_key(&p.name),
        };
        if p.name != f.own_slot && (f.role == SlotRole::Primary || on_replica) {
            want.insert(p.name.clone(), p.clone());
        }
    }
    for m in f.member_slots.iter().filter(|m| *m != f.own_slot) {
        // A member's slot wins over a permanent slot of the same name (Patroni).
        want.insert(
            m.clone(),
            SlotSpec {
                name: m.clone(),
                kind: SlotKind::Physical,
            },
        );
    }
    want
}

/// Plans this cycle's slot changes (docs/patroni-behaviour.md §2.14).
pub fn plan(f: &SlotFacts) -> SlotPlan {
    let want = expected(f);
    let mut out = SlotPlan::default();
    let mut present = BTreeMap::new();
    for slot in f.local {
        match want.get(&slot.name) {
            Some(spec) if spec.kind == slot.kind => {
                present.insert(slot.name.clone(), slot);
            }
            _ if slot.active || f.ignore.iter().any(|r| r.matches(slot)) => {}
            Some(_) => out.drop.push((slot.clone(), DropReason::Mismatch)),
            None => out.drop.push((slot.clone(), DropReason::Unknown)),
        }
    }
    for spec in want.values() {
        match present.get(&spec.name) {
            None => match (f.role, &spec.kind) {
                (SlotRole::Replica, SlotKind::Logical { .. }) => out.copy.push(spec.clone()),
                _ => out.create.push(spec.clone()),
            },
            Some(local) if f.role == SlotRole::Replica => {
                if let Some(to) = advance_target(f, spec, local) {
                    out.advance.push((spec.clone(), to));
                }
            }
            Some(_) => {}
        }
    }
    out
}

/// Replica: where a permanent slot moves to (the leader's position, bounded by replay).
fn advance_target(f: &SlotFacts, spec: &SlotSpec, local: &LocalSlot) -> Option<Lsn> {
    if !f.permanent.iter().any(|p| p.name == spec.name) {
        return None;
    }
    let leader = *f.leader_positions.get(&spec.name)?;
    let to = f.replay_lsn.map_or(leader, |r| leader.min(r));
    (local.position.is_none_or(|p| to > p)).then_some(to)
}

/// The positions the leader publishes in `status.slots`: its permanent slots' positions.
pub fn published_positions(permanent: &[SlotSpec], local: &[LocalSlot]) -> BTreeMap<String, Lsn> {
    local
        .iter()
        .filter(|s| {
            permanent
                .iter()
                .any(|p| p.name == s.name && p.kind == s.kind)
        })
        .filter_map(|s| s.position.map(|p| (s.name.clone(), p)))
        .collect()
}

/// Departed members' slots the leader keeps: `seen` maps each member slot to when (ms)
/// its member was last seen. Current members are stamped `now_ms`; names the previous
/// leader published in `retain_slots` are adopted at `now_ms`; entries older than
/// `ttl_s` are forgotten (all of them at once when `ttl_s` is 0).
pub fn retain(
    seen: &BTreeMap<String, u64>,
    current: &[String],
    published: &[String],
    now_ms: u64,
    ttl_s: u64,
) -> BTreeMap<String, u64> {
    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    if ttl_s > 0 {
        let ttl_ms = ttl_s.saturating_mul(1000);
        for name in published {
            let at = seen.get(name).copied().unwrap_or(now_ms);
            next.insert(name.clone(), at);
        }
        for (name, at) in seen {
            next.insert(name.clone(), *at);
        }
        next.retain(|_, at| now_ms.saturating_sub(*at) < ttl_ms);
    }
    for name in current {
        next.insert(name.clone(), now_ms);
    }
    next
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
