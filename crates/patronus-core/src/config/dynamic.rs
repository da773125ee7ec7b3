//! Dynamic (cluster-wide) configuration stored as JSON in the DCS `config` key.
//!
//! [`DynamicConfig`] is a read-only view with defaults that never fails: foreign or
//! garbage values fall back to defaults per field, with a warning. `validate_dynamic` (in
//! `dynamic_validate.rs`) is the strict check used before writing an edited configuration.

use super::dynamic_roles::{ConfigRole, RoleSettings};
use super::yaml::kind;
use serde_json::{Map, Value};

use super::dynamic_keys::{KeyType, DYNAMIC_KEYS};
pub(crate) use super::dynamic_keys::{DEFAULT_MIN_TTL, MIN_LOOP_WAIT};

/// `synchronous_mode` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// Asynchronous replication.
    #[default]
    Off,
    /// Synchronous replication to `synchronous_node_count` standbys.
    On,
    /// Quorum-based synchronous replication.
    Quorum,
}

impl SyncMode {
    /// Parses `true`/`false`, `"on"`/`"off"`/`"true"`/`"false"` or `"quorum"`.
    pub fn parse(v: &Value) -> Option<SyncMode> {
        if let Value::String(s) = v {
            if s.trim().eq_ignore_ascii_case("quorum") {
                return Some(SyncMode::Quorum);
            }
        }
        parse_bool(v).map(|b| if b { SyncMode::On } else { SyncMode::Off })
    }
}

impl SyncMode {
    /// The mode a raw dynamic configuration (the `config` key) asks for; `Off` when absent or
    /// unreadable, as the agent reads it.
    pub fn of_config(config: Option<&Value>) -> SyncMode {
        config
            .and_then(|c| c.get("synchronous_mode"))
            .and_then(SyncMode::parse)
            .unwrap_or(SyncMode::Off)
    }

    /// Patroni's name of the replication mode of a dynamic configuration: `quorum`,
    /// `strict` (on with `synchronous_mode_strict`), `on` or `off`.
    pub fn label_of_config(config: Option<&Value>) -> &'static str {
        let strict = config
            .and_then(|c| c.get("synchronous_mode_strict"))
            .and_then(parse_bool)
            .unwrap_or(false);
        match SyncMode::of_config(config) {
            SyncMode::Quorum => "quorum",
            SyncMode::On if strict => "strict",
            SyncMode::On => "on",
            SyncMode::Off => "off",
        }
    }
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncMode::Off => "off",
            SyncMode::On => "on",
            SyncMode::Quorum => "quorum",
        })
    }
}

/// Typed view of the dynamic configuration, with Patroni's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicConfig {
    /// Leader key TTL in seconds.
    pub ttl: u64,
    /// Seconds between HA loop runs.
    pub loop_wait: u64,
    /// Seconds before DCS and PostgreSQL operations are retried/given up.
    pub retry_timeout: u64,
    /// Maximum WAL lag in bytes for a replica to be promoted.
    pub maximum_lag_on_failover: u64,
    /// Seconds a primary may take to start before failing over (alias `master_start_timeout`).
    pub primary_start_timeout: u64,
    /// Seconds to wait for a primary to stop (alias `master_stop_timeout`); 0 = forever.
    pub primary_stop_timeout: u64,
    /// Refuse promotion of a replica on an older timeline.
    pub check_timeline: bool,
    /// Maintenance mode.
    pub pause: bool,
    /// Synchronous replication mode.
    pub synchronous_mode: SyncMode,
    /// Block writes when no synchronous standby is available.
    pub synchronous_mode_strict: bool,
    /// Number of synchronous standbys (quorum mode: acknowledgements a commit waits for).
    pub synchronous_node_count: u64,
    /// A synchronous standby lagging more bytes than this is replaced (<= 0: never).
    pub maximum_lag_on_syncnode: i64,
    /// Keep the primary running when the DCS is unreachable but all members agree.
    pub failsafe_mode: bool,
    /// Timeline history entries kept in the DCS (0 = unlimited).
    pub max_timelines_history: u64,
    /// Seconds a departed member's replication slot is kept.
    pub member_slots_ttl: u64,
    /// `postgresql.use_pg_rewind`.
    pub use_pg_rewind: bool,
    /// `postgresql.use_slots`.
    pub use_slots: bool,
    /// `postgresql.parameters`.
    pub parameters: Map<String, Value>,
    /// `postgresql.pg_hba`.
    pub pg_hba: Option<Vec<String>>,
    /// `postgresql.pg_ident`.
    pub pg_ident: Option<Vec<String>>,
    /// `postgresql.recovery_conf` (a replica's extra recovery settings; the node file's
    /// mapping replaces it).
    pub recovery_conf: Option<Map<String, Value>>,
    /// Permanent slots (from `permanent_replication_slots`, `permanent_slots` or `slots`);
    /// a list of names becomes physical slots.
    pub slots: Map<String, Value>,
    /// Slots the agent must not touch.
    pub ignore_slots: Vec<Value>,
    /// `standby_cluster` when it makes this a standby cluster (names `host`, `port` or
    /// `restore_command`).
    pub standby_cluster: Option<super::standby::StandbyCluster>,
    /// Role-specific settings (`parameters_primary`, `pg_hba_replica`, …); see
    /// [`DynamicConfig::for_role`].
    pub roles: super::dynamic_roles::RoleOverrides,
    /// Problems found while reading (each value replaced by its default or clamped).
    pub warnings: Vec<String>,
}

impl Default for DynamicConfig {
    /// Every scalar key at its default from [`DYNAMIC_KEYS`]; nested sections empty.
    fn default() -> Self {
        // The scalar fields are placeholders here: the table's defaults replace them below.
        let mut c = Self {
            ttl: 0,
            loop_wait: 0,
            retry_timeout: 0,
            maximum_lag_on_failover: 0,
            primary_start_timeout: 0,
            primary_stop_timeout: 0,
            check_timeline: false,
            pause: false,
            synchronous_mode: SyncMode::Off,
            synchronous_mode_strict: false,
            synchronous_node_count: 0,
            maximum_lag_on_syncnode: 0,
            failsafe_mode: false,
            max_timelines_history: 0,
            member_slots_ttl: 0,
            use_pg_rewind: false,
            use_slots: true,
            parameters: Map::new(),
            pg_hba: None,
            pg_ident: None,
            recovery_conf: None,
            slots: Map::new(),
            ignore_slots: Vec::new(),
            standby_cluster: None,
            roles: Default::default(),
            warnings: Vec::new(),
        };
        for key in DYNAMIC_KEYS {
            key.set_default(&mut c);
        }
        c
    }
}

/// Parses a non-negative integer given as a JSON number or a numeric string.
pub fn parse_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses a signed integer given as a JSON number or a numeric string.
pub(crate) fn parse_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub use super::tags::parse_bool;

/// Parses a duration in seconds: a number, or a string such as `"90s"`, `"30min"`,
/// `"1h"`, `"1d"` or `"1500ms"` (rounded down to seconds).
pub(crate) fn parse_duration_secs(v: &Value) -> Option<u64> {
    if let Some(n) = parse_u64(v) {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => return Some(n / 1000),
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Reads fields of one object, recording a warning for each unusable value.
struct Reader<'a> {
    warnings: &'a mut Vec<String>,
}

impl Reader<'_> {
    /// Value of `key` in `obj`, or `default` (with a warning when present but unusable).
    fn get<T: std::fmt::Display>(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        keys: &[&str],
        default: T,
        parse: fn(&Value) -> Option<T>,
    ) -> T {
        let Some((key, raw)) = keys
            .iter()
            .find_map(|k| obj.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        else {
            return default;
        };
        match parse(raw) {
            Some(v) => v,
            None => {
                self.warnings.push(format!(
                    "{path}{key}: invalid value {raw}; using default {default}"
                ));
                default
            }
        }
    }

    /// Object at `key`, if any (with a warning when present but not an object).
    fn object<'m>(
        &mut self,
        obj: &'m Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'m Map<String, Value>> {
        match obj.get(key) {
            Some(Value::Object(m)) => Some(m),
            None | Some(Value::Null) => None,
            Some(other) => {
                self.warnings.push(format!(
                    "{path}{key}: expected a mapping, found {}; ignored",
                    kind(other)
                ));
                None
            }
        }
    }

    fn string_list(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Vec<String>> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match string_list(v) {
                Some(list) => Some(list),
                None => {
                    self.warnings
                        .push(format!("{path}{key}: expected a list of strings; ignored"));
                    None
                }
            },
        }
    }
}

/// A list of strings, or `None` when `v` is anything else.
fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|i| i.as_str().map(str::to_string))
        .collect()
}

/// Slots given as a mapping (name → definition) or a list of names (physical slots).
fn slots_map(v: &Value) -> Option<Map<String, Value>> {
    let physical = || serde_json::json!({"type": "physical"});
    match v {
        Value::Object(m) => Some(
            m.iter()
                .map(|(k, v)| {
                    let def = if v.is_null() { physical() } else { v.clone() };
                    (k.clone(), def)
                })
                .collect(),
        ),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(|s| (s.to_string(), physical())))
            .collect(),
        _ => None,
    }
}

/// The root mapping of a dynamic configuration: null is empty, anything else but a
/// mapping is empty with a warning.
fn root_object<'a>(
    v: &'a Value,
    empty: &'a Map<String, Value>,
    warnings: &mut Vec<String>,
) -> &'a Map<String, Value> {
    match v {
        Value::Object(m) => m,
        Value::Null => empty,
        other => {
            warnings.push(format!(
                "(root): expected a mapping, found {}; using defaults",
                kind(other)
            ));
            empty
        }
    }
}

impl DynamicConfig {
    /// True when this is a standby cluster: its leader follows a remote primary.
    pub fn is_standby_cluster(&self) -> bool {
        self.standby_cluster.is_some()
    }

    /// Reads a dynamic configuration with `ttl` at least 20 seconds; never fails.
    pub fn from_value(v: &Value) -> DynamicConfig {
        Self::from_value_with_min_ttl(v, DEFAULT_MIN_TTL)
    }

    /// Like [`DynamicConfig::from_value`] with a custom `ttl` minimum (for fast tests).
    pub fn from_value_with_min_ttl(v: &Value, min_ttl: u64) -> DynamicConfig {
        let mut warnings = Vec::new();
        let empty = Map::new();
        let root = root_object(v, &empty, &mut warnings);
        let mut r = Reader {
            warnings: &mut warnings,
        };
        let pg = r.object(root, "", "postgresql").unwrap_or(&empty);
        let mut c = DynamicConfig::read_loop_settings(&mut r, root);
        c.read_postgresql(&mut r, pg);
        c.read_standby_cluster(&mut r, root);
        c.read_role_settings(&mut r, pg);
        c.read_slots(&mut r, root);
        c.read_ignore_slots(&mut r, root);
        c.clamp(min_ttl, &mut warnings);
        c.warnings = warnings;
        c
    }

    /// The scalar top-level settings of [`DYNAMIC_KEYS`] (loop timing, failover,
    /// synchronous replication, pause, failsafe); every other field at its default.
    fn read_loop_settings(r: &mut Reader<'_>, root: &Map<String, Value>) -> DynamicConfig {
        let mut c = DynamicConfig::default();
        for key in DYNAMIC_KEYS {
            let names: Vec<&str> = key.names().collect();
            match key.ty {
                KeyType::Unsigned { default, field, .. } => {
                    if let Some(f) = field {
                        *f(&mut c) = r.get(root, "", &names, default, parse_u64);
                    }
                }
                KeyType::Signed { default, field } => {
                    *field(&mut c) = r.get(root, "", &names, default, parse_i64);
                }
                KeyType::Bool { default, field } => {
                    *field(&mut c) = r.get(root, "", &names, default, parse_bool);
                }
                KeyType::Duration { default, field } => {
                    *field(&mut c) = r.get(root, "", &names, default, parse_duration_secs);
                }
                KeyType::SyncMode { default, field } => {
                    *field(&mut c) = r.get(root, "", &names, default, SyncMode::parse);
                }
            }
        }
        c
    }

    /// The `postgresql` section's own fields (role variants: [`Self::read_role_settings`]).
    fn read_postgresql(&mut self, r: &mut Reader<'_>, pg: &Map<String, Value>) {
        self.use_pg_rewind = r.get(pg, "postgresql.", &["use_pg_rewind"], false, parse_bool);
        self.use_slots = r.get(pg, "postgresql.", &["use_slots"], true, parse_bool);
        self.parameters = r
            .object(pg, "postgresql.", "parameters")
            .cloned()
            .unwrap_or_default();
        self.pg_hba = r.string_list(pg, "postgresql.", "pg_hba");
        self.pg_ident = r.string_list(pg, "postgresql.", "pg_ident");
        self.recovery_conf = r.object(pg, "postgresql.", "recovery_conf").cloned();
    }

    /// `standby_cluster`, read leniently: its problems become warnings.
    fn read_standby_cluster(&mut self, r: &mut Reader<'_>, root: &Map<String, Value>) {
        let (standby, problems) =
            super::standby::StandbyCluster::parse_lenient(root.get("standby_cluster"));
        self.standby_cluster = standby;
        r.warnings
            .extend(problems.into_iter().map(|p| format!("{p}; ignored")));
    }

    /// `postgresql.parameters_<role>`, `pg_hba_<role>`, `pg_ident_<role>` of each role.
    fn read_role_settings(&mut self, r: &mut Reader<'_>, pg: &Map<String, Value>) {
        for role in [
            ConfigRole::Primary,
            ConfigRole::Replica,
            ConfigRole::StandbyLeader,
        ] {
            let sfx = role.suffix();
            let o = RoleSettings {
                parameters: r
                    .object(pg, "postgresql.", &format!("parameters_{sfx}"))
                    .cloned()
                    .unwrap_or_default(),
                pg_hba: r.string_list(pg, "postgresql.", &format!("pg_hba_{sfx}")),
                pg_ident: r.string_list(pg, "postgresql.", &format!("pg_ident_{sfx}")),
            };
            match role {
                ConfigRole::Primary => self.roles.primary = o,
                ConfigRole::Replica => self.roles.replica = o,
                ConfigRole::StandbyLeader => self.roles.standby_leader = o,
            }
        }
    }

    /// Permanent slots (under any of their three names); permanent logical slots turn
    /// `hot_standby_feedback` on.
    fn read_slots(&mut self, r: &mut Reader<'_>, root: &Map<String, Value>) {
        let slot_keys = ["permanent_replication_slots", "permanent_slots", "slots"];
        if let Some((key, raw)) = slot_keys
            .iter()
            .find_map(|k| root.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        {
            match slots_map(raw) {
                Some(m) => self.slots = m,
                None => r.warnings.push(format!(
                    "{key}: expected a mapping or a list of names; ignored"
                )),
            }
        }
        let (permanent, invalid) = crate::ha::slots::permanent_slots(&self.slots);
        r.warnings
            .extend(invalid.into_iter().map(|e| format!("{e}; slot ignored")));
        if permanent
            .iter()
            .any(|s| s.kind != crate::ha::slots::SlotKind::Physical)
        {
            // Replicas report the logical slots' catalog_xmin to the primary (Patroni forces
            // it on with permanent logical slots).
            self.parameters
                .insert("hot_standby_feedback".into(), Value::String("on".into()));
        }
    }

    /// `ignore_slots`, a list kept as given.
    fn read_ignore_slots(&mut self, r: &mut Reader<'_>, root: &Map<String, Value>) {
        match root.get("ignore_slots") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => self.ignore_slots = items.clone(),
            Some(other) => r.warnings.push(format!(
                "ignore_slots: expected a list, found {}; ignored",
                kind(other)
            )),
        }
    }

    /// Applies the minimums and the rule `loop_wait + 2 * retry_timeout <= ttl`.
    fn clamp(&mut self, min_ttl: u64, warnings: &mut Vec<String>) {
        let mut at_least = |name: &str, value: &mut u64, min: u64| {
            if *value < min {
                warnings.push(format!(
                    "{name}: {value} is below the minimum {min}; using {min}"
                ));
                *value = min;
            }
        };
        for key in DYNAMIC_KEYS {
            if let (KeyType::Unsigned { field: Some(f), .. }, Some(min)) =
                (key.ty, key.minimum(min_ttl))
            {
                at_least(key.name, f(self), min);
            }
        }
        let needed = |lw: u64, rt: u64| lw.saturating_add(rt.saturating_mul(2));
        if needed(self.loop_wait, self.retry_timeout) > self.ttl {
            let (lw, rt) = (self.loop_wait, self.retry_timeout);
            self.loop_wait = self
                .ttl
                .saturating_sub(self.retry_timeout.saturating_mul(2))
                .max(MIN_LOOP_WAIT);
            if needed(self.loop_wait, self.retry_timeout) > self.ttl {
                self.retry_timeout = (self.ttl.saturating_sub(self.loop_wait) / 2).max(1);
            }
            warnings.push(format!(
                "loop_wait ({lw}) + 2 * retry_timeout ({rt}) exceeds ttl ({}); using loop_wait {} \
                 and retry_timeout {}",
                self.ttl, self.loop_wait, self.retry_timeout
            ));
        }
    }
}

#[cfg(test)]
#[path = "dynamic_tests.rs"]
mod tests;
