//! PostgreSQL parameter values: JSON → text, Patroni's protected
//! ("command line") parameters, the effective postgresql.conf parameter set,
//! and GUC unit handling for comparing desired values with `pg_settings`.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::names::is_valid_guc_name;

/// Patroni's protected parameters: passed to `postgres` as `--name=value`,
/// never written to postgresql.conf, settable only from the dynamic (DCS)
/// configuration.
pub const PROTECTED: &[&str] = &[
    "wal_level",
    "hot_standby",
    "max_connections",
    "max_wal_senders",
    "wal_keep_size",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "track_commit_timestamp",
    "max_replication_slots",
    "max_worker_processes",
    "wal_log_hints",
];

/// Parameters that come from the node configuration (also passed on the
/// command line), never from the parameter maps.
pub const NODE_PARAMETERS: &[&str] = &["listen_addresses", "port", "cluster_name"];

/// Parameters written by the renderer itself (file locations and the
/// recovery block), so they are dropped from the parameter maps.
pub const RENDERER_PARAMETERS: &[&str] = &[
    "hba_file",
    "ident_file",
    "primary_conninfo",
    "primary_slot_name",
    "recovery_target_timeline",
];

/// Validation rule of a protected parameter.
#[derive(Clone, Copy)]
enum Rule {
    /// hot_standby / replica / logical; hot_standby is rewritten to replica.
    WalLevel,
    /// A boolean that must be true.
    MustBeOn,
    /// Any boolean.
    Bool,
    /// An integer in `[min, i32::MAX]`.
    Int(i64),
    /// A memory size in MB (bare number) or with a memory unit, at least `min` MB.
    MemoryMb(f64),
}

/// Protected parameters with their defaults and rules (same order as `PROTECTED`).
const SPECS: &[(&str, &str, Rule)] = &[
    ("wal_level", "replica", Rule::WalLevel),
    ("hot_standby", "on", Rule::MustBeOn),
    ("max_connections", "100", Rule::Int(25)),
    ("max_wal_senders", "10", Rule::Int(3)),
    ("wal_keep_size", "128MB", Rule::MemoryMb(16.0)),
    ("max_prepared_transactions", "0", Rule::Int(0)),
    ("max_locks_per_transaction", "64", Rule::Int(32)),
    ("track_commit_timestamp", "off", Rule::Bool),
    ("max_replication_slots", "10", Rule::Int(4)),
    ("max_worker_processes", "8", Rule::Int(2)),
    ("wal_log_hints", "on", Rule::Bool),
];

/// The value of an integral JSON float that an `f64` represents exactly.
fn integral_float(n: &Number) -> Option<i64> {
    n.as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
        .map(|f| f as i64)
}

/// Renders a JSON number as PostgreSQL-friendly decimal text.
fn number_text(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match (integral_float(n), n.as_f64()) {
        (Some(i), _) => i.to_string(),
        (None, Some(f)) => format!("{f}"),
        (None, None) => n.to_string(),
    }
}

/// Converts a JSON parameter value to its postgresql.conf text.
///
/// `true` → `"on"`, `false` → `"off"`, numbers → decimal text (integral
/// values without `.0`), strings as-is; `null`, arrays and objects → `None`
/// (the parameter is removed).
pub fn param_to_string(v: &Value) -> Option<String> {
    match v {
        Value::Bool(true) => Some("on".to_string()),
        Value::Bool(false) => Some("off".to_string()),
        Value::Number(n) => Some(number_text(n)),
        Value::String(s) => Some(s.clone()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Parses a boolean the way PostgreSQL does: on/off/true/false/yes/no/1/0,
/// case-insensitive, unique prefixes allowed (`o` alone is ambiguous).
fn parse_bool(s: &str) -> Option<bool> {
    let v = s.trim().to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| v.len() >= min && word.starts_with(v.as_str());
    if v == "1" || prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) {
        Some(true)
    } else if v == "0" || prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) {
        Some(false)
    } else {
        None
    }
}

/// Reads an integer given as a JSON number (integral) or a numeric string.
fn parse_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| integral_float(n)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Validates a protected parameter value; returns its normalised text.
fn validate(rule: Rule, v: &Value) -> Option<String> {
    match rule {
        Rule::WalLevel => match param_to_string(v)?.trim().to_ascii_lowercase().as_str() {
            "hot_standby" | "replica" => Some("replica".to_string()),
            "logical" => Some("logical".to_string()),
            _ => None,
        },
        Rule::MustBeOn => parse_bool(&param_to_string(v)?)
            .filter(|b| *b)
            .map(|_| "on".to_string()),
        Rule::Bool => parse_bool(&param_to_string(v)?).map(|b| if b { "on" } else { "off" }.into()),
        Rule::Int(min) => parse_int(v)
            .filter(|n| *n >= min && *n <= i64::from(i32::MAX))
            .map(|n| n.to_string()),
        Rule::MemoryMb(min) => {
            let text = param_to_string(v)?.trim().to_string();
            let mb = value_in_setting_units(&text, Some("MB"))?;
            (mb >= min && mb <= f64::from(i32::MAX)).then_some(text)
        }
    }
}

/// Finds `name` in `map`, exactly or else case-insensitively (GUC names are
/// case-insensitive).
fn lookup<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The `postgres` command-line parameters and any warnings produced while
/// computing them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// `--name=value` arguments, sorted by name.
    pub args: Vec<String>,
    /// One message per invalid value that was replaced by its default.
    pub warnings: Vec<String>,
}

/// Computes the protected command-line parameters.
///
/// `dynamic` is the DCS `postgresql.parameters`. Missing or `null` values use
/// the default; invalid values fall back to the default with a warning
/// `invalid value for parameter X: Y, using default Z`. `listen_addresses`,
/// `port` and `cluster_name` come from the arguments.
pub fn command_line_parameters(
    dynamic: &Map<String, Value>,
    listen_addresses: &str,
    port: u16,
    cluster_name: &str,
) -> CommandLine {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(SPECS.len() + 3);
    let mut warnings = Vec::new();
    for &(name, default, rule) in SPECS {
        let value = match lookup(dynamic, name) {
            None | Some(Value::Null) => default.to_string(),
            Some(v) => validate(rule, v).unwrap_or_else(|| {
                let shown = param_to_string(v).unwrap_or_else(|| v.to_string());
                warnings.push(format!(
                    "invalid value for parameter {name}: {shown}, using default {default}"
                ));
                default.to_string()
            }),
        };
        pairs.push((name.to_string(), value));
    }
    pairs.push(("listen_addresses".into(), listen_addresses.to_string()));
    pairs.push(("port".into(), port.to_string()));
    pairs.push(("cluster_name".into(), cluster_name.to_string()));
    pairs.sort();
    CommandLine {
        args: pairs
            .into_iter()
            .map(|(n, v)| format!("--{n}={v}"))
            .collect(),
        warnings,
    }
}

/// Computes the effective postgresql.conf parameters.
///
/// `dynamic` (DCS) is merged with `local` (node config; local wins). Names
/// are lower-cased; protected names, `NODE_PARAMETERS`, `RENDERER_PARAMETERS`
/// and syntactically invalid names are removed; a `null` (or array/object)
/// value removes the parameter.
pub fn conf_parameters(
    dynamic: &Map<String, Value>,
    local: &Map<String, Value>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in dynamic.iter().chain(local.iter()) {
        let name = name.to_ascii_lowercase();
        let excluded = [PROTECTED, NODE_PARAMETERS, RENDERER_PARAMETERS]
            .iter()
            .any(|list| list.contains(&name.as_str()));
        if excluded || !is_valid_guc_name(&name) {
            continue;
        }
        match param_to_string(value) {
            Some(text) => {
                out.insert(name, text);
            }
            None => {
                out.remove(&name);
            }
        }
    }
    out
}

/// Kind of a GUC unit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    Memory,
    Time,
}

/// A unit as written in a value: its kind and size in bytes or microseconds.
/// Unit names are case-sensitive, as in PostgreSQL.
fn unit_factor(unit: &str) -> Option<(UnitKind, f64)> {
    const K: f64 = 1024.0;
    Some(match unit {
        "B" => (UnitKind::Memory, 1.0),
        "kB" => (UnitKind::Memory, K),
        "MB" => (UnitKind::Memory, K * K),
        "GB" => (UnitKind::Memory, K * K * K),
        "TB" => (UnitKind::Memory, K * K * K * K),
        "us" => (UnitKind::Time, 1.0),
        "ms" => (UnitKind::Time, 1_000.0),
        "s" => (UnitKind::Time, 1_000_000.0),
        "min" => (UnitKind::Time, 60_000_000.0),
        "h" => (UnitKind::Time, 3_600_000_000.0),
        "d" => (UnitKind::Time, 86_400_000_000.0),
        _ => return None,
    })
}

/// A `pg_settings.unit` such as `8kB`, `16MB`, `kB` or `s`.
fn setting_unit_factor(unit: &str) -> Option<(UnitKind, f64)> {
    let split = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let (digits, name) = unit.split_at(split);
    let multiplier = if digits.is_empty() {
        1.0
    } else {
        f64::from(digits.parse::<u32>().ok().filter(|m| *m > 0)?)
    };
    let (kind, factor) = unit_factor(name.trim())?;
    Some((kind, factor * multiplier))
}

/// Splits a leading number (decimal with optional fraction and exponent, or
/// `0x` hex) from the rest of the text.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let sign_len = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits_from = |i: usize| {
        b.get(i..)
            .map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count())
    };
    let body = &b[sign_len..];
    if body.len() > 2 && (body.starts_with(b"0x") || body.starts_with(b"0X")) {
        let start = sign_len + 2;
        let len = b.get(start..).map_or(0, |r| {
            r.iter().take_while(|c| c.is_ascii_hexdigit()).count()
        });
        let mag = i64::from_str_radix(s.get(start..start + len)?, 16).ok()? as f64;
        let v = if b.first() == Some(&b'-') { -mag } else { mag };
        return Some((v, s.get(start + len..)?));
    }
    let int_len = digits_from(sign_len);
    let mut end = sign_len + int_len;
    let mut frac_len = 0;
    if b.get(end) == Some(&b'.') {
        frac_len = digits_from(end + 1);
        end += 1 + frac_len;
    }
    if int_len + frac_len == 0 {
        return None;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let exp_sign = usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
        let exp_len = digits_from(end + 1 + exp_sign);
        if exp_len > 0 {
            end += 1 + exp_sign + exp_len;
        }
    }
    let v: f64 = s.get(..end)?.parse().ok()?;
    v.is_finite().then_some((v, s.get(end..)?))
}

/// Converts a value as a user writes it (`"64MB"`, `"5min"`, `"128"`,
/// `"0.5h"`) to the number of base units of a setting whose
/// `pg_settings.unit` is `setting_unit` (`"8kB"`, `"kB"`, `"MB"`, `"B"`,
/// `"ms"`, `"s"`, `"min"`, or `""`/`None`).
///
/// Memory units B/kB/MB/GB/TB use factors of 1024; time units are
/// us/ms/s/min/h/d. A bare number is already in the setting's unit. Returns
/// `None` for unparsable text, an unknown unit, a unit on a unitless
/// setting, or mixing memory with time. No rounding is applied.
pub fn value_in_setting_units(value: &str, setting_unit: Option<&str>) -> Option<f64> {
    let (n, rest) = split_number(value.trim())?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Some(n);
    }
    let setting_unit = setting_unit.map(str::trim).filter(|u| !u.is_empty())?;
    let (setting_kind, setting_factor) = setting_unit_factor(setting_unit)?;
    let (kind, factor) = unit_factor(rest)?;
    (kind == setting_kind).then_some(n * factor / setting_factor)
}

/// True when a desired value and `pg_settings`' `(setting, unit)` denote the
/// same value.
///
/// `vartype` is `pg_settings.vartype`. Integers compare numerically after
/// unit conversion (rounded half-to-even, as PostgreSQL does); reals compare
/// numerically with a relative tolerance of 1e-5 (pg_settings prints six
/// significant digits); booleans compare by meaning (on/off/true/false/
/// yes/no/1/0 and unique prefixes). Everything else, and values that fail to
/// parse, fall back to case-insensitive string equality.
pub fn setting_matches(desired: &str, setting: &str, unit: Option<&str>, vartype: &str) -> bool {
    let (desired, setting) = (desired.trim(), setting.trim());
    match vartype.trim().to_ascii_lowercase().as_str() {
        "bool" => {
            if let (Some(a), Some(b)) = (parse_bool(desired), parse_bool(setting)) {
                return a == b;
            }
        }
        "integer" => {
            if let (Some(a), Ok(b)) = (
                value_in_setting_units(desired, unit),
                setting.parse::<f64>(),
            ) {
                return a.round_ties_even() == b;
            }
        }
        "real" => {
            if let (Some(a), Ok(b)) = (
                value_in_setting_units(desired, unit),
                setting.parse::<f64>(),
            ) {
                return a == b || (a - b).abs() <= 1e-5 * a.abs().max(b.abs());
            }
        }
        _ => {}
    }
    desired.to_lowercase() == setting.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn json_values_to_text() {
        assert_eq!(param_to_string(&json!(true)).as_deref(), Some("on"));
        assert_eq!(param_to_string(&json!(false)).as_deref(), Some("off"));
        assert_eq!(param_to_string(&json!(100)).as_deref(), Some("100"));
        assert_eq!(param_to_string(&json!(-5)).as_deref(), Some("-5"));
        assert_eq!(
            param_to_string(&json!(u64::MAX)).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(param_to_string(&json!(2.0)).as_deref(), Some("2"));
        assert_eq!(param_to_string(&json!(0.9)).as_deref(), Some("0.9"));
        assert_eq!(param_to_string(&json!("64MB")).as_deref(), Some("64MB"));
        assert_eq!(param_to_string(&json!(null)), None);
        assert_eq!(param_to_string(&json!([1])), None);
        assert_eq!(param_to_string(&json!({"a": 1})), None);
    }

    #[test]
    fn protected_table_is_consistent() {
        let names: Vec<&str> = SPECS.iter().map(|s| s.0).collect();
        assert_eq!(names, PROTECTED);
        assert_eq!(PROTECTED.len(), 11);
    }

    #[test]
    fn protected_defaults() {
        let cl = command_line_parameters(&Map::new(), "*", 5432, "batman");
        assert!(cl.warnings.is_empty());
        let want = "--cluster_name=batman --hot_standby=on --listen_addresses=* \
            --max_connections=100 --max_locks_per_transaction=64 --max_prepared_transactions=0 \
            --max_replication_slots=10 --max_wal_senders=10 --max_worker_processes=8 --port=5432 \
            --track_commit_timestamp=off --wal_keep_size=128MB --wal_level=replica --wal_log_hints=on";
        assert_eq!(cl.args.join(" "), want);
    }

    #[test]
    fn protected_valid_values() {
        let dynamic = map(json!({
            "wal_level": "hot_standby", "hot_standby": "true", "max_connections": "200",
            "max_wal_senders": 5, "wal_keep_size": "1GB", "max_prepared_transactions": 0,
            "Max_Locks_Per_Transaction": 128, "track_commit_timestamp": true,
            "max_replication_slots": 4.0, "max_worker_processes": " 16 ", "wal_log_hints": "no",
            "shared_buffers": "1GB",
        }));
        let cl = command_line_parameters(&dynamic, "0.0.0.0", 5433, "c");
        assert!(cl.warnings.is_empty(), "{:?}", cl.warnings);
        let want = "--cluster_name=c --hot_standby=on --listen_addresses=0.0.0.0 \
            --max_connections=200 --max_locks_per_transaction=128 --max_prepared_transactions=0 \
            --max_replication_slots=4 --max_wal_senders=5 --max_worker_processes=16 --port=5433 \
            --track_commit_timestamp=on --wal_keep_size=1GB --wal_level=replica --wal_log_hints=off";
        assert_eq!(cl.args.join(" "), want);
        let logical = map(json!({"wal_level": "Logical", "wal_keep_size": 16}));
        let cl = command_line_parameters(&logical, "*", 5432, "c");
        assert!(cl.args.contains(&"--wal_level=logical".to_string()));
        assert!(cl.args.contains(&"--wal_keep_size=16".to_string()));
    }

    #[test]
    fn protected_invalid_values_fall_back_with_warnings() {
        let dynamic = map(json!({
            "wal_level": "minimal", "hot_standby": "off", "max_connections": 10,
            "max_wal_senders": "many", "wal_keep_size": "8MB", "max_prepared_transactions": -1,
            "track_commit_timestamp": "maybe", "max_replication_slots": [4],
            "max_worker_processes": 1.5, "wal_log_hints": null,
        }));
        let cl = command_line_parameters(&dynamic, "*", 5432, "c");
        assert_eq!(
            cl.warnings,
            [
                "invalid value for parameter wal_level: minimal, using default replica",
                "invalid value for parameter hot_standby: off, using default on",
                "invalid value for parameter max_connections: 10, using default 100",
                "invalid value for parameter max_wal_senders: many, using default 10",
                "invalid value for parameter wal_keep_size: 8MB, using default 128MB",
                "invalid value for parameter max_prepared_transactions: -1, using default 0",
                "invalid value for parameter track_commit_timestamp: maybe, using default off",
                "invalid value for parameter max_replication_slots: [4], using default 10",
                "invalid value for parameter max_worker_processes: 1.5, using default 8",
            ]
        );
        assert!(cl.args.contains(&"--max_connections=100".to_string()));
        assert!(cl.args.contains(&"--wal_log_hints=on".to_string()));
        let bad_units = map(json!({"wal_keep_size": "1min", "max_connections": "3000000000"}));
        let cl = command_line_parameters(&bad_units, "*", 1, "c");
        assert_eq!(cl.warnings.len(), 2);
    }

    #[test]
    fn conf_parameters_merge_and_filter() {
        let dynamic = map(json!({
            "shared_buffers": "1GB", "work_mem": "4MB", "max_connections": 500,
            "wal_level": "logical", "Port": 1, "cluster_name": "x", "hba_file": "/h",
            "ident_file": "/i", "listen_addresses": "*", "primary_conninfo": "host=x",
            "jit": false, "archive_command": null, "bad name": "x",
        }));
        let local = map(json!({
            "work_mem": "8MB", "shared_buffers": null, "Log_Min_Duration_Statement": 250,
            "track_commit_timestamp": "on", "pg_stat_statements.track": "all",
        }));
        let got: Vec<String> = conf_parameters(&dynamic, &local)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let want =
            "jit=off log_min_duration_statement=250 pg_stat_statements.track=all work_mem=8MB";
        assert_eq!(got.join(" "), want);
    }

    #[test]
    fn units_conversion() {
        let conv = value_in_setting_units;
        assert_eq!(conv("64MB", Some("8kB")), Some(8192.0));
        assert_eq!(conv("4MB", Some("kB")), Some(4096.0));
        assert_eq!(conv("5min", Some("s")), Some(300.0));
        assert_eq!(conv("1s", Some("ms")), Some(1000.0));
        assert_eq!(conv("0.5h", Some("min")), Some(30.0));
        assert_eq!(conv("1GB", Some("MB")), Some(1024.0));
        assert_eq!(conv("2 TB", Some("GB")), Some(2048.0));
        assert_eq!(conv("1TB", Some("16MB")), Some(65536.0));
        assert_eq!(conv("1d", Some("h")), Some(24.0));
        assert_eq!(conv("1500us", Some("ms")), Some(1.5));
        assert_eq!(conv("1024B", Some("kB")), Some(1.0));
        assert_eq!(conv("128", Some("8kB")), Some(128.0));
        assert_eq!(conv(" 42 ", None), Some(42.0));
        assert_eq!(conv("-1", Some("ms")), Some(-1.0));
        assert_eq!(conv("1e3", Some("")), Some(1000.0));
        assert_eq!(conv("0x10", None), Some(16.0));
        assert_eq!(conv(".5", None), Some(0.5));
        for bad in ["5min", "1mb", "abc", "", "1 2", "MB", "1e999", "1 kB x"] {
            assert_eq!(conv(bad, Some("kB")), None, "{bad:?}");
        }
        for unit in [None, Some(""), Some("weird"), Some("0kB"), Some("s")] {
            assert_eq!(conv("64MB", unit), None, "{unit:?}");
        }
    }

    #[test]
    fn matching_settings() {
        assert!(setting_matches("64MB", "8192", Some("8kB"), "integer"));
        assert!(!setting_matches("64MB", "8191", Some("8kB"), "integer"));
        assert!(setting_matches("4MB", "4096", Some("kB"), "integer"));
        assert!(setting_matches("5min", "300", Some("s"), "integer"));
        assert!(setting_matches("1s", "1000", Some("ms"), "integer"));
        assert!(setting_matches("100", "100", None, "integer"));
        assert!(setting_matches("2500ms", "2", Some("s"), "integer"));
        assert!(setting_matches("0.1", "0.1", None, "real"));
        assert!(setting_matches("0.1234567", "0.123457", None, "real"));
        assert!(!setting_matches("0.2", "0.1", None, "real"));
        for on in ["on", "true", "YES", "1", "t", "y", "On "] {
            assert!(setting_matches(on, "on", None, "bool"), "{on}");
        }
        for off in ["off", "false", "no", "0", "of", "F", "n"] {
            assert!(setting_matches(off, "off", None, "bool"), "{off}");
        }
        assert!(!setting_matches("on", "off", None, "bool"));
        assert!(!setting_matches("o", "on", None, "bool"));
        assert!(setting_matches("Replica", "replica", None, "enum"));
        assert!(setting_matches("UTC", "utc", None, "string"));
        assert!(!setting_matches("a", "b", None, "string"));
    }
}
