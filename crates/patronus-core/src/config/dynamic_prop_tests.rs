//! Property tests of the dynamic configuration read from the DCS `config` key: any JSON
//! gives a usable view (never a panic), each unusable value is a warning naming its key,
//! every duration derived from it stays representable, and the strict validator answers
//! `path: reason` for anything.

use super::dynamic::DynamicConfig;
use super::dynamic_validate::validate_dynamic;
use super::timing::{deadline, duration, ms_after, secs_to_ms};
use crate::prop_support::{config, json_value, scalar};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Top-level keys read with a type (number, boolean, duration or mode).
const TYPED_KEYS: &[&str] = &[
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "primary_start_timeout",
    "primary_stop_timeout",
    "check_timeline",
    "pause",
    "synchronous_mode",
    "synchronous_mode_strict",
    "synchronous_node_count",
    "failsafe_mode",
    "max_timelines_history",
    "member_slots_ttl",
];

/// Every time value the agent derives from a configuration (must not overflow).
fn derive_times(d: &DynamicConfig) {
    for secs in [d.ttl, d.loop_wait, d.retry_timeout, d.primary_start_timeout] {
        let ms = secs_to_ms(secs);
        let _ = (
            ms * 3 / 2 + 1000,
            2 * ms,
            ms_after(u64::MAX, secs),
            duration(secs),
        );
        let _ = deadline(std::time::Instant::now(), secs);
    }
    assert!(d.ttl >= 1 && d.loop_wait >= 1 && d.retry_timeout >= 1);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_json_gives_a_usable_view(v in json_value()) {
        let d = DynamicConfig::from_value(&v);
        prop_assert!(d.warnings.iter().all(|w| !w.is_empty()));
        derive_times(&d);
        for p in validate_dynamic(&v) {
            prop_assert!(p.contains(": "), "{p}");
        }
    }

    #[test]
    fn a_wrong_value_is_a_warning_naming_its_key(
        key in prop::sample::select(TYPED_KEYS),
        value in scalar(),
    ) {
        let base = json!({"ttl": 30, "loop_wait": 10, "retry_timeout": 10});
        let mut v = base.clone();
        v[key] = value.clone();
        let d = DynamicConfig::from_value(&v);
        derive_times(&d);
        let default = DynamicConfig::from_value(&base);
        let changed = d.warnings.len() > default.warnings.len();
        if changed {
            prop_assert!(
                d.warnings.iter().any(|w| w.contains(key) || w.contains("loop_wait")),
                "{key} = {value}: {:?}", d.warnings
            );
        }
    }

    #[test]
    fn parameters_of_any_shape_are_kept_or_reported(params in json_value()) {
        let v = json!({"postgresql": {"parameters": params.clone(), "pg_hba": params}});
        let d = DynamicConfig::from_value(&v);
        if !params.is_object() && !params.is_null() {
            prop_assert!(
                d.warnings.iter().any(|w| w.starts_with("postgresql.parameters")),
                "{:?}", d.warnings
            );
        }
        let _ = validate_dynamic(&v);
    }
}

#[test]
fn huge_durations_saturate() {
    let v: Value = json!({
        "ttl": u64::MAX, "loop_wait": u64::MAX, "retry_timeout": i64::MAX,
        "primary_start_timeout": u64::MAX, "member_slots_ttl": "18446744073709551615d"
    });
    let d = DynamicConfig::from_value(&v);
    derive_times(&d);
    assert_eq!(d.ttl, u64::MAX);
    assert_eq!(secs_to_ms(d.primary_start_timeout), secs_to_ms(u64::MAX));
}
