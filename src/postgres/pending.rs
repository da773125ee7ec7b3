//! Pending-restart computation (docs/patroni-behaviour.md §2.16): which parameters
//! differ from what the running PostgreSQL uses and need a restart, and in
//! which order the members of a cluster should restart for a change.

use std::collections::BTreeMap;

use serde_json::{json, Map};

use crate::postgres::params::{setting_matches, value_in_setting_units, RENDERER_PARAMETERS};

/// One row of `SELECT name, setting, unit, vartype, context, pending_restart FROM pg_settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingRow {
    /// `pg_settings.name` (lower case).
    pub name: String,
    /// `pg_settings.setting`: the running value in the setting's base unit.
    pub setting: String,
    /// `pg_settings.unit`, e.g. `8kB`, `kB`, `ms`, `s`; `None` when unitless.
    pub unit: Option<String>,
    /// `pg_settings.vartype`: `bool`, `integer`, `real`, `string` or `enum`.
    pub vartype: String,
    /// `pg_settings.context`; `postmaster` means a change needs a restart.
    pub context: String,
    /// `pg_settings.pending_restart`: PostgreSQL read a changed value it
    /// cannot apply without a restart.
    pub pending_restart: bool,
}

/// Parameters that differ from what runs and need a restart:
/// `{name: {"old_value": …, "new_value": …}}`, in the order of `rows`.
///
/// `desired` = effective parameters we wrote (name → value text; names are
/// matched case-insensitively), `rows` = pg_settings. A parameter counts when
/// its context is `postmaster`, we have a desired value and
/// `setting_matches(desired, setting, unit, vartype)` is false, or when
/// pg_settings says `pending_restart` for it (then `new_value` is the desired
/// value if we have one, else `"?"`).
///
/// `old_value` is the running value in readable form: memory settings in the
/// largest exact unit among kB/MB/GB (`2048` × `8kB` → `16MB`), time settings
/// in the largest exact unit among ms/s/min/h/d, anything else (and zero or
/// negative values, which PostgreSQL also shows without a unit) as `setting`.
/// `new_value` is the desired text as configured.
pub fn pending_restart(
    desired: &BTreeMap<String, String>,
    rows: &[SettingRow],
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = Map::new();
    for row in rows {
        if is_role_parameter(&row.name) {
            continue;
        }
        let want = desired.get(&row.name).or_else(|| {
            desired
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&row.name))
                .map(|(_, v)| v)
        });
        let postmaster = row.context.trim().eq_ignore_ascii_case("postmaster");
        let differs = want
            .is_some_and(|w| !setting_matches(w, &row.setting, row.unit.as_deref(), &row.vartype));
        // PostgreSQL's own flag also fires when a file value (e.g. initdb's
        // max_connections in postgresql.base.conf) differs from a value we pass on the
        // command line; for a parameter we manage, what counts is whether ours runs.
        let flagged = row.pending_restart && want.is_none_or(|_| differs);
        if (postmaster && differs) || flagged {
            let old = readable_setting(&row.setting, row.unit.as_deref());
            let new = want.map_or("?", String::as_str);
            out.insert(
                row.name.clone(),
                json!({"old_value": old, "new_value": new}),
            );
        }
    }
    out
}

/// Parameters the renderer sets per role (the recovery block of a replica): a promotion
/// or a demotion changes them in the file, and PostgreSQL then flags
/// `recovery_target_timeline` as pending although it only matters when a replica starts,
/// which always renders it anew. They are never a reason to restart.
fn is_role_parameter(name: &str) -> bool {
    RENDERER_PARAMETERS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name) && !p.ends_with("_file"))
}

/// Kind of a `pg_settings.unit`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Size in bytes.
    Memory,
    /// Duration in microseconds.
    Time,
}

/// Parses a `pg_settings.unit` (`8kB`, `16MB`, `kB`, `ms`, `s`, `min`, …)
/// into its kind and size in bytes or microseconds.
fn parse_unit(unit: &str) -> Option<(Kind, u128)> {
    let split = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let (digits, name) = unit.split_at(split);
    let mult: u128 = if digits.is_empty() {
        1
    } else {
        digits.parse().ok().filter(|m| *m > 0)?
    };
    let (kind, size) = match name.trim() {
        "B" => (Kind::Memory, 1),
        "kB" => (Kind::Memory, 1 << 10),
        "MB" => (Kind::Memory, 1 << 20),
        "GB" => (Kind::Memory, 1 << 30),
        "TB" => (Kind::Memory, 1 << 40),
        "us" => (Kind::Time, 1),
        "ms" => (Kind::Time, 1_000),
        "s" => (Kind::Time, 1_000_000),
        "min" => (Kind::Time, 60_000_000),
        "h" => (Kind::Time, 3_600_000_000),
        "d" => (Kind::Time, 86_400_000_000),
        _ => return None,
    };
    Some((kind, size * mult))
}

/// The running value as a person would write it (see [`pending_restart`]).
fn readable_setting(setting: &str, unit: Option<&str>) -> String {
    let setting = setting.trim();
    let Some(unit) = unit.map(str::trim).filter(|u| !u.is_empty()) else {
        return setting.to_string();
    };
    let Some((kind, size)) = parse_unit(unit) else {
        return setting.to_string();
    };
    let Ok(n) = setting.parse::<u128>() else {
        // Fractions (reals) and negative values: shown as PostgreSQL has them.
        let plain_unit = unit.starts_with(|c: char| !c.is_ascii_digit());
        let fraction = setting.parse::<f64>().is_ok_and(|f| f > 0.0);
        return if plain_unit && fraction {
            format!("{setting}{unit}")
        } else {
            setting.to_string()
        };
    };
    if n == 0 {
        return setting.to_string();
    }
    let total = n.saturating_mul(size);
    let candidates: &[(&str, u128)] = match kind {
        Kind::Memory => &[("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10), ("B", 1)],
        Kind::Time => &[
            ("d", 86_400_000_000),
            ("h", 3_600_000_000),
            ("min", 60_000_000),
            ("s", 1_000_000),
            ("ms", 1_000),
            ("us", 1),
        ],
    };
    candidates
        .iter()
        .find(|(_, s)| total % s == 0)
        .map_or_else(|| setting.to_string(), |(u, s)| format!("{}{u}", total / s))
}

/// In which order the members should restart for a parameter change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartOrder {
    /// Replicas before the primary (the value grows: a replica must never run
    /// with less than the primary).
    ReplicasFirst,
    /// The primary before the replicas (the value shrinks).
    PrimaryFirst,
    /// No constraint.
    Any,
}

/// Shared-memory parameters that must be at least as high on a hot standby as
/// on its primary.
const STANDBY_MINIMUMS: [&str; 5] = [
    "max_connections",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "max_worker_processes",
    "max_wal_senders",
];

/// The restart order for a change of `name` from `old` to `new`:
/// `ReplicasFirst` when one of max_connections, max_prepared_transactions,
/// max_locks_per_transaction, max_worker_processes or max_wal_senders
/// increases, `PrimaryFirst` when one decreases, `Any` otherwise (other
/// parameters, equal values, or values that are not numbers).
pub fn restart_order(name: &str, old: &str, new: &str) -> RestartOrder {
    let name = name.trim();
    if !STANDBY_MINIMUMS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
    {
        return RestartOrder::Any;
    }
    match (
        value_in_setting_units(old, None),
        value_in_setting_units(new, None),
    ) {
        (Some(o), Some(n)) if n > o => RestartOrder::ReplicasFirst,
        (Some(o), Some(n)) if n < o => RestartOrder::PrimaryFirst,
        _ => RestartOrder::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::params::PROTECTED;
    use serde_json::Value;

    fn row(
        name: &str,
        setting: &str,
        unit: Option<&str>,
        vartype: &str,
        context: &str,
    ) -> SettingRow {
        SettingRow {
            name: name.into(),
            setting: setting.into(),
            unit: unit.map(Into::into),
            vartype: vartype.into(),
            context: context.into(),
            pending_restart: false,
        }
    }

    fn desired(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn postmaster_change_is_pending_with_readable_old_value() {
        let rows = [row(
            "shared_buffers",
            "2048",
            Some("8kB"),
            "integer",
            "postmaster",
        )];
        let got = pending_restart(&desired(&[("shared_buffers", "32MB")]), &rows);
        assert_eq!(
            Value::Object(got),
            json!({"shared_buffers": {"old_value": "16MB", "new_value": "32MB"}})
        );
    }

    #[test]
    fn unchanged_or_reloadable_is_not_pending() {
        let rows = [
            row("work_mem", "4096", Some("kB"), "integer", "user"),
            row("max_connections", "100", None, "integer", "postmaster"),
            row(
                "shared_buffers",
                "16384",
                Some("8kB"),
                "integer",
                "postmaster",
            ),
            row("wal_level", "replica", None, "enum", "postmaster"),
        ];
        let want = desired(&[
            ("work_mem", "64MB"),
            ("max_connections", "100"),
            ("shared_buffers", "128MB"),
            ("WAL_LEVEL", "Replica"),
        ]);
        assert!(pending_restart(&want, &rows).is_empty());
    }

    #[test]
    fn flag_on_a_managed_parameter_that_runs_our_value_is_ignored() {
        // initdb's postgresql.base.conf says max_connections = 100; we pass 50 on the
        // command line, which wins; PostgreSQL still flags pending_restart.
        let mut r = row("max_connections", "50", None, "integer", "postmaster");
        r.pending_restart = true;
        assert!(pending_restart(&desired(&[("max_connections", "50")]), &[r]).is_empty());
    }

    #[test]
    fn role_parameters_are_never_pending() {
        // A promoted primary: the recovery block left the file, PostgreSQL flags it.
        let mut r = row(
            "recovery_target_timeline",
            "latest",
            None,
            "string",
            "postmaster",
        );
        r.pending_restart = true;
        let mut conninfo = row("primary_conninfo", "host=x", None, "string", "sighup");
        conninfo.pending_restart = true;
        assert!(pending_restart(&desired(&[]), &[r, conninfo]).is_empty());
    }

    #[test]
    fn flagged_by_postgres_is_included() {
        let mut unmanaged = row("huge_pages", "try", None, "enum", "postmaster");
        unmanaged.pending_restart = true;
        let mut managed = row("max_wal_size", "1024", Some("MB"), "integer", "sighup");
        managed.pending_restart = true;
        let rows = [
            unmanaged,
            managed,
            row("port", "5432", None, "integer", "postmaster"),
        ];
        let got = pending_restart(&desired(&[("max_wal_size", "2GB")]), &rows);
        assert_eq!(
            Value::Object(got),
            json!({
                "huge_pages": {"old_value": "try", "new_value": "?"},
                "max_wal_size": {"old_value": "1GB", "new_value": "2GB"},
            })
        );
    }

    #[test]
    fn readable_values() {
        let r = readable_setting;
        assert_eq!(r("2048", Some("8kB")), "16MB");
        assert_eq!(r("131072", Some("8kB")), "1GB");
        assert_eq!(r("1000", Some("kB")), "1000kB");
        assert_eq!(r("1536", Some("B")), "1536B");
        assert_eq!(r("2048", Some("B")), "2kB");
        assert_eq!(r("16", Some("16MB")), "256MB");
        assert_eq!(r("300", Some("s")), "5min");
        assert_eq!(r("86400", Some("s")), "1d");
        assert_eq!(r("7200000", Some("ms")), "2h");
        assert_eq!(r("1500", Some("ms")), "1500ms");
        assert_eq!(r("60", Some("min")), "1h");
        assert_eq!(r("-1", Some("ms")), "-1");
        assert_eq!(r("0", Some("kB")), "0");
        assert_eq!(r("0.5", Some("ms")), "0.5ms");
        assert_eq!(r("100", None), "100");
        assert_eq!(r("on", Some("")), "on");
        assert_eq!(r("7", Some("weird")), "7");
    }

    #[test]
    fn restart_orders() {
        use RestartOrder::*;
        assert_eq!(
            restart_order("max_connections", "100", "200"),
            ReplicasFirst
        );
        assert_eq!(restart_order("max_connections", "200", "100"), PrimaryFirst);
        assert_eq!(restart_order("Max_WAL_Senders", "10", "5"), PrimaryFirst);
        assert_eq!(restart_order("max_worker_processes", "8", "8"), Any);
        assert_eq!(restart_order("max_locks_per_transaction", "x", "64"), Any);
        assert_eq!(restart_order("shared_buffers", "128MB", "1GB"), Any);
        assert!(STANDBY_MINIMUMS.iter().all(|p| PROTECTED.contains(p)));
    }
}
