//! Parameters rendered for the PostgreSQL major of the data directory (13–17), as Patroni
//! adapts them: settings removed in a major are dropped (with a warning instead of a
//! postmaster that refuses to start), renamed ones are written under the name that major
//! knows, and `wal_keep_segments` (removed in 13) becomes `wal_keep_size` (× 16MB).
//! `recovery.conf` is never written: every supported major (≥ 12) reads the recovery
//! settings from postgresql.conf and the signal files.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// (parameter, first major without it).
const REMOVED: &[(&str, u32)] = &[
    ("wal_keep_segments", 13),
    ("operator_precedence_warning", 14),
    ("stats_temp_directory", 15),
    ("promote_trigger_file", 16),
    ("vacuum_defer_cleanup_age", 16),
    ("old_snapshot_threshold", 17),
    ("db_user_namespace", 17),
    ("trace_recovery_messages", 17),
];

/// (old name, new name, first major with the new name).
const RENAMED: &[(&str, &str, u32)] = &[("force_parallel_mode", "debug_parallel_query", 16)];

/// The major in a `PG_VERSION` file (`15`, or `9.6` → 9).
pub fn parse_pg_version(text: &str) -> Option<u32> {
    text.trim().split('.').next()?.parse().ok()
}

/// Adapts the postgresql.conf parameters to `major`; returns one warning per change.
pub fn adapt(params: &mut BTreeMap<String, String>, major: u32) -> Vec<String> {
    let mut warnings = Vec::new();
    for &(old, new, since) in RENAMED {
        let (from, to) = if major >= since {
            (old, new)
        } else {
            (new, old)
        };
        if let Some(v) = params.remove(from) {
            warnings.push(format!(
                "{from} is called {to} in PostgreSQL {major}: written as {to}"
            ));
            params.entry(to.to_string()).or_insert(v);
        }
    }
    for &(name, gone) in REMOVED {
        if major >= gone && params.remove(name).is_some() {
            warnings.push(format!(
                "{name} does not exist in PostgreSQL {major} (removed in {gone}): not written"
            ));
        }
    }
    warnings
}

/// The dynamic parameters with `wal_keep_segments` turned into `wal_keep_size` (16MB
/// segments) when only the old name is given, as Patroni does for 13 and later.
pub fn dynamic_for_major(params: &Map<String, Value>, major: Option<u32>) -> Map<String, Value> {
    let mut out = params.clone();
    if major.is_some_and(|m| m >= 13) && !out.contains_key("wal_keep_size") {
        let segments = out.get("wal_keep_segments").and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        if let Some(n) = segments {
            out.insert("wal_keep_size".into(), format!("{}MB", n * 16).into());
        }
    }
    out.remove("wal_keep_segments");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf() -> BTreeMap<String, String> {
        [
            ("work_mem", "8MB"),
            ("wal_keep_segments", "8"),
            ("operator_precedence_warning", "on"),
            ("stats_temp_directory", "/run/pg_stat_tmp"),
            ("promote_trigger_file", "/tmp/promote"),
            ("vacuum_defer_cleanup_age", "0"),
            ("force_parallel_mode", "off"),
            ("old_snapshot_threshold", "-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn keys_for(major: u32) -> Vec<String> {
        let mut c = conf();
        adapt(&mut c, major);
        c.into_keys().collect()
    }

    #[test]
    fn major_13() {
        assert_eq!(
            keys_for(13),
            [
                "force_parallel_mode",
                "old_snapshot_threshold",
                "operator_precedence_warning",
                "promote_trigger_file",
                "stats_temp_directory",
                "vacuum_defer_cleanup_age",
                "work_mem"
            ]
        );
    }

    #[test]
    fn major_14() {
        assert_eq!(
            keys_for(14),
            [
                "force_parallel_mode",
                "old_snapshot_threshold",
                "promote_trigger_file",
                "stats_temp_directory",
                "vacuum_defer_cleanup_age",
                "work_mem"
            ]
        );
    }

    #[test]
    fn major_15() {
        assert_eq!(
            keys_for(15),
            [
                "force_parallel_mode",
                "old_snapshot_threshold",
                "promote_trigger_file",
                "vacuum_defer_cleanup_age",
                "work_mem"
            ]
        );
    }

    #[test]
    fn major_16() {
        assert_eq!(
            keys_for(16),
            ["debug_parallel_query", "old_snapshot_threshold", "work_mem"]
        );
    }

    #[test]
    fn major_17() {
        let mut c = conf();
        let w = adapt(&mut c, 17);
        assert_eq!(
            c.keys().collect::<Vec<_>>(),
            ["debug_parallel_query", "work_mem"]
        );
        assert!(
            w.iter().any(|l| l
                .contains("stats_temp_directory does not exist in PostgreSQL 17 (removed in 15)")),
            "{w:?}"
        );
    }

    #[test]
    fn renamed_back_for_an_older_major() {
        let mut c: BTreeMap<String, String> =
            [("debug_parallel_query".to_string(), "on".to_string())].into();
        adapt(&mut c, 15);
        assert_eq!(c.get("force_parallel_mode").map(String::as_str), Some("on"));
    }

    #[test]
    fn wal_keep_segments_becomes_wal_keep_size() {
        let d = json!({"wal_keep_segments": 8, "max_connections": 50});
        let out = dynamic_for_major(d.as_object().unwrap(), Some(15));
        assert_eq!(out.get("wal_keep_size"), Some(&json!("128MB")));
        assert!(!out.contains_key("wal_keep_segments"));
        let both = json!({"wal_keep_segments": 8, "wal_keep_size": "1GB"});
        let out = dynamic_for_major(both.as_object().unwrap(), Some(17));
        assert_eq!(out.get("wal_keep_size"), Some(&json!("1GB")));
    }

    #[test]
    fn pg_version_file() {
        assert_eq!(parse_pg_version("15\n"), Some(15));
        assert_eq!(parse_pg_version("9.6\n"), Some(9));
        assert_eq!(parse_pg_version("x"), None);
    }
}
