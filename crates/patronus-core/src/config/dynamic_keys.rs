//! The one table of the scalar top-level keys of the dynamic configuration
//! ([`DYNAMIC_KEYS`]): name, Patroni's old aliases, type, default, minimum and what patronus
//! does with the key. The lenient reader ([`super::DynamicConfig::from_value`]), the strict
//! check ([`super::validate_dynamic`]) and the known-key table
//! ([`super::known_keys::DYNAMIC_SECTIONS`]) all read it; a test in the main crate checks the
//! desired-state JSON Schema (`schema/cluster.schema.json`) against it.
//!
//! The defaults and minimums are Patroni's: docs/patroni-behaviour.md §5.2 (dynamic
//! configuration); the minimums are those of Patroni's `validate_and_adjust_timeouts` and
//! schema validator (`IntValidator(min=…)`). Patroni has no maximum for any of these keys.
//! Nested sections (`postgresql`, `standby_cluster`, the slot keys) are not scalars and are
//! classified in [`super::known_keys`].

use super::dynamic::{parse_bool, parse_duration_secs, parse_i64, parse_u64};
use super::dynamic::{DynamicConfig, SyncMode};
use super::known_keys::KeyStatus::{self, Ignored, Used};
use serde_json::{Map, Value};

/// Lowest `ttl` unless the caller lowers it (`PATRONUS_MIN_TTL`, for fast tests);
/// docs/patroni-behaviour.md §5.2 ("at least 20").
pub const DEFAULT_MIN_TTL: u64 = 20;
/// Lowest `loop_wait` (docs/patroni-behaviour.md §5.2, "at least 1").
pub(crate) const MIN_LOOP_WAIT: u64 = 1;
/// Lowest `retry_timeout` (docs/patroni-behaviour.md §5.2, "at least 3").
pub(crate) const MIN_RETRY_TIMEOUT: u64 = 3;

const NOT_DROPPED: &str = "the history key keeps every timeline";
const STOP_WAITS: &str = "stopping PostgreSQL is never cut short";

/// Where a key's value lives in [`DynamicConfig`].
pub type Field<T> = fn(&mut DynamicConfig) -> &mut T;

/// The lowest value accepted for a non-negative integer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Minimum {
    /// Any non-negative integer.
    Zero,
    /// This value.
    Fixed(u64),
    /// The `ttl` minimum: [`DEFAULT_MIN_TTL`] unless the caller passes another one.
    Ttl,
}

/// Type of a scalar key, with its default and the field it fills (when patronus reads it).
#[derive(Debug, Clone, Copy)]
pub enum KeyType {
    /// A non-negative integer (seconds, bytes or a count): a JSON number or numeric string.
    Unsigned {
        /// Value when absent or unusable.
        default: u64,
        /// Lowest accepted value.
        min: Minimum,
        /// Field of [`DynamicConfig`]; `None` for keys that are only validated.
        field: Option<Field<u64>>,
    },
    /// A signed integer.
    Signed {
        /// Value when absent or unusable.
        default: i64,
        /// Field of [`DynamicConfig`].
        field: Field<i64>,
    },
    /// A boolean (`true`, `"on"`, `"yes"`, ...).
    Bool {
        /// Value when absent or unusable.
        default: bool,
        /// Field of [`DynamicConfig`].
        field: Field<bool>,
    },
    /// Seconds, or a duration string such as `"30min"`.
    Duration {
        /// Value (seconds) when absent or unusable.
        default: u64,
        /// Field of [`DynamicConfig`].
        field: Field<u64>,
    },
    /// `synchronous_mode`: a boolean, `"on"`, `"off"` or `"quorum"`.
    SyncMode {
        /// Value when absent or unusable.
        default: SyncMode,
        /// Field of [`DynamicConfig`].
        field: Field<SyncMode>,
    },
}

impl KeyType {
    /// Whether `v` is a usable value of this type.
    pub fn accepts(&self, v: &Value) -> bool {
        match self {
            KeyType::Unsigned { .. } => parse_u64(v).is_some(),
            KeyType::Signed { .. } => parse_i64(v).is_some(),
            KeyType::Bool { .. } => parse_bool(v).is_some(),
            KeyType::Duration { .. } => parse_duration_secs(v).is_some(),
            KeyType::SyncMode { .. } => SyncMode::parse(v).is_some(),
        }
    }

    /// What a value of this type looks like, for "expected …" messages.
    pub fn expected(&self) -> &'static str {
        match self {
            KeyType::Unsigned { .. } => "a non-negative integer",
            KeyType::Signed { .. } => "an integer",
            KeyType::Bool { .. } => "a boolean",
            KeyType::Duration { .. } => "seconds or a duration like \"30min\"",
            KeyType::SyncMode { .. } => "true, false, \"on\", \"off\" or \"quorum\"",
        }
    }
}

/// One scalar top-level key of the dynamic configuration.
#[derive(Debug, Clone, Copy)]
pub struct DynamicKey {
    /// Current name.
    pub name: &'static str,
    /// Older names Patroni still reads (`master_*`); the current name wins when both are set.
    pub aliases: &'static [&'static str],
    /// Type, default and field.
    pub ty: KeyType,
    /// What patronus does with the key (the same for its aliases).
    pub status: KeyStatus,
}

impl DynamicKey {
    /// The name, then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    /// The first of [`Self::names`] set (not null) in `obj`, with its value.
    pub fn find<'a>(&self, obj: &'a Map<String, Value>) -> Option<(&'static str, &'a Value)> {
        self.names()
            .find_map(|n| obj.get(n).filter(|v| !v.is_null()).map(|v| (n, v)))
    }

    /// The lowest accepted value (non-negative integers only), `min_ttl` standing for `ttl`'s.
    pub fn minimum(&self, min_ttl: u64) -> Option<u64> {
        match self.ty {
            KeyType::Unsigned { min, .. } => Some(match min {
                Minimum::Zero => 0,
                Minimum::Fixed(n) => n,
                Minimum::Ttl => min_ttl,
            }),
            _ => None,
        }
    }

    /// The value of a non-negative integer key in `obj`: its default when absent or
    /// unusable; `None` for other types.
    pub fn unsigned_in(&self, obj: &Map<String, Value>) -> Option<u64> {
        match self.ty {
            KeyType::Unsigned { default, .. } => Some(
                self.find(obj)
                    .and_then(|(_, v)| parse_u64(v))
                    .unwrap_or(default),
            ),
            _ => None,
        }
    }

    /// Sets this key's field of `c` to the default.
    pub(crate) fn set_default(&self, c: &mut DynamicConfig) {
        match self.ty {
            KeyType::Unsigned { default, field, .. } => {
                if let Some(f) = field {
                    *f(c) = default;
                }
            }
            KeyType::Signed { default, field } => *field(c) = default,
            KeyType::Bool { default, field } => *field(c) = default,
            KeyType::Duration { default, field } => *field(c) = default,
            KeyType::SyncMode { default, field } => *field(c) = default,
        }
    }
}

/// The key named `name` (current name or alias).
pub fn dynamic_key(name: &str) -> Option<&'static DynamicKey> {
    DYNAMIC_KEYS.iter().find(|k| k.names().any(|n| n == name))
}

/// Shorthand for a non-negative integer read into a field.
const fn unsigned(default: u64, min: Minimum, field: Field<u64>) -> KeyType {
    KeyType::Unsigned {
        default,
        min,
        field: Some(field),
    }
}

/// Every scalar top-level key of the dynamic configuration (docs/patroni-behaviour.md §5.2).
/// The order is the order of the checks and warnings.
#[rustfmt::skip]
pub const DYNAMIC_KEYS: &[DynamicKey] = &[
    // Lock and lease TTL, at least 20 (Patroni's IntValidator(min=20)).
    DynamicKey { name: "ttl", aliases: &[],
        ty: unsigned(30, Minimum::Ttl, |c| &mut c.ttl), status: Used },
    DynamicKey { name: "loop_wait", aliases: &[],
        ty: unsigned(10, Minimum::Fixed(MIN_LOOP_WAIT), |c| &mut c.loop_wait), status: Used },
    DynamicKey { name: "retry_timeout", aliases: &[],
        ty: unsigned(10, Minimum::Fixed(MIN_RETRY_TIMEOUT), |c| &mut c.retry_timeout),
        status: Used },
    // Bytes.
    DynamicKey { name: "maximum_lag_on_failover", aliases: &[],
        ty: unsigned(1_048_576, Minimum::Zero, |c| &mut c.maximum_lag_on_failover),
        status: Used },
    // ≤ 0: never swap a sync standby for lag. Patroni's validator says min=-1; patronus reads
    // any integer and treats every value ≤ 0 alike.
    DynamicKey { name: "maximum_lag_on_syncnode", aliases: &[],
        ty: KeyType::Signed { default: -1, field: |c| &mut c.maximum_lag_on_syncnode },
        status: Used },
    DynamicKey { name: "max_timelines_history", aliases: &[],
        ty: unsigned(0, Minimum::Zero, |c| &mut c.max_timelines_history),
        status: Ignored(NOT_DROPPED) },
    // §2.10: old name master_start_timeout.
    DynamicKey { name: "primary_start_timeout", aliases: &["master_start_timeout"],
        ty: unsigned(300, Minimum::Zero, |c| &mut c.primary_start_timeout), status: Used },
    DynamicKey { name: "primary_stop_timeout", aliases: &["master_stop_timeout"],
        ty: unsigned(0, Minimum::Zero, |c| &mut c.primary_stop_timeout),
        status: Ignored(STOP_WAITS) },
    DynamicKey { name: "primary_race_backoff", aliases: &[],
        ty: KeyType::Unsigned { default: 0, min: Minimum::Zero, field: None },
        status: Ignored("the leader race has no back-off") },
    DynamicKey { name: "synchronous_mode", aliases: &[],
        ty: KeyType::SyncMode { default: SyncMode::Off, field: |c| &mut c.synchronous_mode },
        status: Used },
    DynamicKey { name: "synchronous_mode_strict", aliases: &[],
        ty: KeyType::Bool { default: false, field: |c| &mut c.synchronous_mode_strict },
        status: Used },
    // Patroni's IntValidator(min=1).
    DynamicKey { name: "synchronous_node_count", aliases: &[],
        ty: unsigned(1, Minimum::Fixed(1), |c| &mut c.synchronous_node_count), status: Used },
    DynamicKey { name: "failsafe_mode", aliases: &[],
        ty: KeyType::Bool { default: false, field: |c| &mut c.failsafe_mode }, status: Used },
    DynamicKey { name: "check_timeline", aliases: &[],
        ty: KeyType::Bool { default: false, field: |c| &mut c.check_timeline }, status: Used },
    // §2.9: maintenance mode; absent means not paused.
    DynamicKey { name: "pause", aliases: &[],
        ty: KeyType::Bool { default: false, field: |c| &mut c.pause }, status: Used },
    // §2.14: seconds or a duration string; 0 drops a member's slot with its key.
    DynamicKey { name: "member_slots_ttl", aliases: &[],
        ty: KeyType::Duration { default: 1800, field: |c| &mut c.member_slots_ttl },
        status: Used },
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique_and_found() {
        let mut all: Vec<&str> = DYNAMIC_KEYS.iter().flat_map(|k| k.names()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a name is listed twice");
        for name in all {
            assert!(dynamic_key(name).is_some(), "{name}");
        }
        assert_eq!(
            dynamic_key("master_start_timeout").map(|k| k.name),
            Some("primary_start_timeout")
        );
    }

    #[test]
    fn defaults_are_accepted_and_above_minimums() {
        for k in DYNAMIC_KEYS {
            if let (Some(v), Some(min)) = (k.unsigned_in(&Map::new()), k.minimum(DEFAULT_MIN_TTL)) {
                assert!(v >= min, "{}: default {v} below {min}", k.name);
            }
        }
    }

    /// A valid value other than the default, as JSON (`None` for keys without a field).
    fn other_value(k: &DynamicKey) -> Option<Value> {
        match k.ty {
            KeyType::Unsigned { field: None, .. } => None,
            KeyType::Unsigned { default, .. } => Some(json!(default + 7)),
            KeyType::Duration { default, .. } => Some(json!(default + 7)),
            KeyType::Signed { default, .. } => Some(json!(default + 7)),
            KeyType::Bool { default, .. } => Some(json!(!default)),
            KeyType::SyncMode { .. } => Some(json!("quorum")),
        }
    }

    /// Each row's value lands in its own field of `DynamicConfig`, and no two rows share a
    /// field: after reading a key alone, resetting exactly that row's field (in the read and
    /// in a read without the key) makes the two equal, and no other row's does.
    #[test]
    fn each_key_fills_its_own_field() {
        let reset = |c: &DynamicConfig, row: &DynamicKey| {
            let mut c = c.clone();
            row.set_default(&mut c);
            c
        };
        for k in DYNAMIC_KEYS {
            let Some(v) = other_value(k) else { continue };
            // A large ttl, so that the timing rule clamps nothing.
            let base = DynamicConfig::from_value(&json!({"ttl": 1000}));
            let mut root = json!({"ttl": 1000});
            root[k.name] = v;
            let read = DynamicConfig::from_value(&root);
            assert!(read.warnings.is_empty(), "{}: {:?}", k.name, read.warnings);
            assert_ne!(read, base, "{}: the value was not read", k.name);
            let explaining: Vec<&str> = DYNAMIC_KEYS
                .iter()
                .filter(|o| reset(&read, o) == reset(&base, o))
                .map(|o| o.name)
                .collect();
            assert_eq!(explaining, vec![k.name]);
        }
    }

    #[test]
    fn current_name_wins_over_alias() {
        let obj = json!({"master_start_timeout": 5, "primary_start_timeout": 7});
        let k = dynamic_key("primary_start_timeout").unwrap();
        assert_eq!(k.unsigned_in(obj.as_object().unwrap()), Some(7));
        let obj = json!({"master_start_timeout": 5, "primary_start_timeout": null});
        assert_eq!(k.unsigned_in(obj.as_object().unwrap()), Some(5));
    }
}
