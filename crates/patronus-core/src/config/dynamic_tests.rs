//! Tests of the dynamic configuration view and its strict validation.

use super::*;
use crate::config::dynamic_validate::{validate_dynamic, validate_dynamic_with_min_ttl};
use serde_json::json;

#[test]
fn defaults_from_empty_and_null() {
    let d = DynamicConfig::from_value(&json!({}));
    assert_eq!(d, DynamicConfig::default());
    assert_eq!(
        DynamicConfig::from_value(&Value::Null),
        DynamicConfig::default()
    );
    assert_eq!(d.ttl, 30);
    assert_eq!(d.loop_wait, 10);
    assert_eq!(d.retry_timeout, 10);
    assert_eq!(d.maximum_lag_on_failover, 1_048_576);
    assert_eq!(d.primary_start_timeout, 300);
    assert_eq!(d.member_slots_ttl, 1800);
    assert_eq!(d.synchronous_node_count, 1);
    assert!(d.use_slots && !d.use_pg_rewind && !d.pause);
    assert_eq!(d.synchronous_mode, SyncMode::Off);
}

#[test]
fn reads_values_strings_and_aliases() {
    let d = DynamicConfig::from_value(&json!({
        "ttl": "40", "loop_wait": 5, "retry_timeout": 10.0,
        "master_start_timeout": 60, "primary_stop_timeout": "7",
        "pause": "on", "check_timeline": true, "failsafe_mode": "true",
        "synchronous_mode": "quorum", "synchronous_mode_strict": "off",
        "synchronous_node_count": 2, "member_slots_ttl": "30min",
        "max_timelines_history": 3, "maximum_lag_on_syncnode": "1048576",
        "postgresql": {"use_pg_rewind": "yes", "use_slots": false,
                       "parameters": {"max_connections": 100},
                       "pg_hba": ["local all all trust"], "pg_ident": []},
        "permanent_slots": {"s1": {"type": "logical", "database": "d", "plugin": "p"}, "s2": null},
        "ignore_slots": [{"name": "x"}]
    }));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (40, 5, 10));
    assert_eq!(d.primary_start_timeout, 60);
    assert_eq!(d.primary_stop_timeout, 7);
    assert!(d.pause && d.check_timeline && d.failsafe_mode && !d.synchronous_mode_strict);
    assert_eq!(d.synchronous_mode, SyncMode::Quorum);
    assert_eq!(d.synchronous_node_count, 2);
    assert_eq!(d.maximum_lag_on_syncnode, 1_048_576);
    assert_eq!(d.member_slots_ttl, 1800);
    assert_eq!(d.max_timelines_history, 3);
    assert!(d.use_pg_rewind && !d.use_slots);
    assert_eq!(d.parameters["max_connections"], 100);
    assert_eq!(d.pg_hba, Some(vec!["local all all trust".to_string()]));
    assert_eq!(d.pg_ident, Some(vec![]));
    assert_eq!(d.slots["s2"], json!({"type": "physical"}));
    assert_eq!(
        d.slots["s1"],
        json!({"type": "logical", "database": "d", "plugin": "p"})
    );
    assert_eq!(d.ignore_slots.len(), 1);
}

#[test]
fn sync_mode_values() {
    for (v, m) in [
        (json!(true), SyncMode::On),
        (json!("on"), SyncMode::On),
        (json!("TRUE"), SyncMode::On),
        (json!(false), SyncMode::Off),
        (json!("off"), SyncMode::Off),
        (json!("Quorum"), SyncMode::Quorum),
    ] {
        assert_eq!(SyncMode::parse(&v), Some(m), "{v}");
    }
    assert_eq!(SyncMode::parse(&json!("sometimes")), None);
}

#[test]
fn durations() {
    for (s, secs) in [
        ("90s", 90),
        ("30min", 1800),
        ("1h", 3600),
        ("1d", 86_400),
        ("2500ms", 2),
        ("45", 45),
    ] {
        assert_eq!(parse_duration_secs(&json!(s)), Some(secs), "{s}");
    }
    assert_eq!(parse_duration_secs(&json!(120)), Some(120));
    assert_eq!(parse_duration_secs(&json!("1 fortnight")), None);
    assert_eq!(parse_duration_secs(&json!("h")), None);
}

#[test]
fn slots_as_list_and_legacy_alias() {
    let d = DynamicConfig::from_value(&json!({"slots": ["a", "b"]}));
    assert_eq!(d.slots.len(), 2);
    assert_eq!(d.slots["a"], json!({"type": "physical"}));
    let d = DynamicConfig::from_value(
        &json!({"permanent_replication_slots": {"p": {}}, "slots": {"q": {}}}),
    );
    assert!(d.slots.contains_key("p") && !d.slots.contains_key("q"));
}

#[test]
fn garbage_falls_back_to_defaults() {
    let d = DynamicConfig::from_value(&json!({
        "ttl": "abc", "loop_wait": -3, "retry_timeout": [1],
        "pause": "maybe", "synchronous_mode": 7, "member_slots_ttl": "soon",
        "postgresql": {"parameters": "x", "pg_hba": [1, 2], "use_slots": {}},
        "slots": 5, "ignore_slots": "all"
    }));
    let defaults = DynamicConfig::default();
    assert_eq!(d.ttl, defaults.ttl);
    assert_eq!(d.loop_wait, defaults.loop_wait);
    assert_eq!(d.retry_timeout, defaults.retry_timeout);
    assert!(!d.pause);
    assert_eq!(d.synchronous_mode, SyncMode::Off);
    assert_eq!(d.member_slots_ttl, 1800);
    assert!(d.parameters.is_empty() && d.pg_hba.is_none() && d.use_slots);
    assert!(d.slots.is_empty() && d.ignore_slots.is_empty());
    assert_eq!(d.warnings.len(), 11, "{:#?}", d.warnings);
    assert!(d
        .warnings
        .iter()
        .any(|w| w.starts_with("ttl: invalid value \"abc\"")));
    assert!(d
        .warnings
        .iter()
        .any(|w| w.starts_with("postgresql.pg_hba:")));

    let d = DynamicConfig::from_value(&json!("garbage"));
    assert_eq!(d.ttl, 30);
    assert_eq!(d.warnings.len(), 1);
    let d = DynamicConfig::from_value(&json!({"postgresql": 3}));
    assert_eq!(
        d.warnings,
        vec!["postgresql: expected a mapping, found a number; ignored"]
    );
}

#[test]
fn clamps_minimums() {
    let d = DynamicConfig::from_value(
        &json!({"ttl": 5, "loop_wait": 0, "retry_timeout": 1, "synchronous_node_count": 0}),
    );
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (20, 1, 3));
    assert_eq!(d.synchronous_node_count, 1);
    assert_eq!(d.warnings.len(), 4, "{:?}", d.warnings);
}

#[test]
fn ttl_rule_lowers_loop_wait_then_retry_timeout() {
    let d = DynamicConfig::from_value(&json!({"ttl": 20, "loop_wait": 10, "retry_timeout": 8}));
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (20, 4, 8));
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].contains("loop_wait (10) + 2 * retry_timeout (8) exceeds ttl (20)"));

    let d = DynamicConfig::from_value(&json!({"ttl": 20, "loop_wait": 10, "retry_timeout": 15}));
    assert_eq!((d.loop_wait, d.retry_timeout), (1, 9));
    assert!(d.loop_wait + 2 * d.retry_timeout <= d.ttl);

    let d = DynamicConfig::from_value(&json!({"ttl": 30, "loop_wait": 10, "retry_timeout": 10}));
    assert!(d.warnings.is_empty());
    let d = DynamicConfig::from_value(
        &json!({"ttl": 30, "loop_wait": u64::MAX, "retry_timeout": u64::MAX}),
    );
    assert!(d.loop_wait.saturating_add(2 * d.retry_timeout) <= d.ttl);
}

#[test]
fn custom_min_ttl_for_fast_tests() {
    let d = DynamicConfig::from_value_with_min_ttl(
        &json!({"ttl": 7, "loop_wait": 1, "retry_timeout": 3}),
        5,
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (7, 1, 3));
    let d = DynamicConfig::from_value_with_min_ttl(&json!({"ttl": 2}), 5);
    assert_eq!(d.ttl, 5);
    assert!(d.loop_wait + 2 * d.retry_timeout <= 5);
    assert!(validate_dynamic_with_min_ttl(
        &json!({"ttl": 6, "loop_wait": 1, "retry_timeout": 2}),
        5
    )
    .iter()
    .all(|p| p.starts_with("retry_timeout: 2 is below")));
}

#[test]
fn validate_accepts_good_config() {
    let v = json!({
        "ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_syncnode": -1,
        "synchronous_mode": "quorum", "member_slots_ttl": "1h", "pause": false,
        "postgresql": {"parameters": {"a": 1}, "pg_hba": ["x"], "use_slots": "on",
                       "pg_hba_primary": ["y"], "recovery_conf": {"restore_command": "z"}},
        "permanent_slots": ["s"], "ignore_slots": [{"name": "x"}],
        "standby_cluster": null, "x_custom": 1, "patronus_extra": {}
    });
    assert!(
        validate_dynamic(&v).is_empty(),
        "{:?}",
        validate_dynamic(&v)
    );
}

#[test]
fn validate_reports_every_problem() {
    let v = json!({
        "ttl": "abc", "loop_wait": 0, "retry_timeout": 2, "pause": "maybe",
        "synchronous_mode": "sometimes", "bogus": 1, "member_slots_ttl": "later",
        "postgresql": {"parameters": [], "pg_hba": [1], "use_pg_rewind": 3, "listen": "x"},
        "slots": 3, "ignore_slots": ["a"], "standby_cluster": "x"
    });
    let p = validate_dynamic(&v);
    let expected = [
        "bogus: unknown key",
        "ttl: expected a non-negative integer, found \"abc\"",
        "member_slots_ttl: expected seconds",
        "pause: expected a boolean, found \"maybe\"",
        "synchronous_mode: expected true, false, \"on\", \"off\" or \"quorum\", found \"sometimes\"",
        "loop_wait: 0 is below the minimum 1",
        "retry_timeout: 2 is below the minimum 3",
        "slots: expected a mapping of slots or a list of names, found a number",
        "ignore_slots[0]: expected a mapping, found a string",
        "standby_cluster: expected a mapping, found a string",
        "postgresql.listen: unknown key",
        "postgresql.parameters: expected a mapping, found a list",
        "postgresql.pg_hba: expected a list of strings",
        "postgresql.use_pg_rewind: expected a boolean, found 3",
    ];
    for e in expected {
        assert!(p.iter().any(|x| x.starts_with(e)), "{e} not in {p:#?}");
    }
    assert_eq!(p.len(), expected.len(), "{p:#?}");
}

#[test]
fn validate_ttl_rule_and_root() {
    let p = validate_dynamic(&json!({"ttl": 20, "loop_wait": 10, "retry_timeout": 10}));
    assert_eq!(
        p,
        vec!["loop_wait: loop_wait (10) + 2 * retry_timeout (10) must not exceed ttl (20)"]
    );
    assert_eq!(
        validate_dynamic(&json!([1])),
        vec!["(root): expected a mapping, found a list"]
    );
    assert_eq!(validate_dynamic(&json!({"ttl": 10})).len(), 2);
}
