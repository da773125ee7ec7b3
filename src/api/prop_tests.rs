//! Property tests of the REST request bodies (`POST /switchover`, `/failover`, `/restart`,
//! `/reinitialize`, `/failsafe`, `PATCH`/`PUT /config`): any bytes give a request or a 4xx answer with
//! a text naming the field, never a panic.

use super::requests::{
    parse_failsafe, parse_object, parse_reinitialize, parse_restart, patched_config,
};
use super::switchover::validate;
use crate::prop_support::{config, json_value, raw_text, scalar};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Every request field the handlers read.
const FIELDS: &[&str] = &[
    "leader",
    "master",
    "candidate",
    "member",
    "scheduled_at",
    "role",
    "postgres_version",
    "restart_pending",
    "timeout",
    "schedule",
    "from_leader",
    "force",
    "name",
    "conn_url",
    "api_url",
];

fn answer_ok(code: u16, text: &str) -> bool {
    (400..500).contains(&code) && !text.is_empty()
}

/// Runs every body parser on `v`.
fn parse_all(v: &Value, now_ms: u64) -> Result<(), String> {
    for (failover, paused) in [(false, false), (true, false), (false, true), (true, true)] {
        if let Err((code, text)) = validate(v, failover, paused, now_ms) {
            if !answer_ok(code, &text) {
                return Err(format!("switchover answer {code} {text:?}"));
            }
        }
    }
    if let Err((code, text)) = parse_restart(v) {
        if !answer_ok(code, &text) {
            return Err(format!("restart answer {code} {text:?}"));
        }
    }
    let _ = parse_reinitialize(v);
    if let Err((code, text)) = parse_failsafe(v) {
        if !answer_ok(code, &text) {
            return Err(format!("failsafe answer {code} {text:?}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_body_is_an_object_or_a_400_text(body in raw_text(), empty_ok in any::<bool>()) {
        match parse_object(body.as_bytes(), empty_ok) {
            Ok(v) => {
                prop_assert!(v.is_object());
                prop_assert!(parse_all(&v, 1_700_000_000_000).is_ok());
            }
            Err(e) => prop_assert!(e.starts_with("Bad request: "), "{e}"),
        }
    }

    #[test]
    fn any_value_in_any_field_is_handled(
        fields in prop::collection::vec((prop::sample::select(FIELDS), scalar()), 1..6),
        now_ms in any::<u64>(),
    ) {
        let v = Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let r = parse_all(&v, now_ms);
        prop_assert!(r.is_ok(), "{v}: {r:?}");
    }

    #[test]
    fn a_bad_restart_field_is_named(
        field in prop::sample::select(vec!["role", "postgres_version"]),
        value in scalar(),
    ) {
        let v = json!({ field: value });
        if let Err((_, text)) = parse_restart(&v) {
            let named = if field == "role" { "role" } else { "version" };
            prop_assert!(text.contains(named), "{text}");
        }
    }

    #[test]
    fn any_config_patch_merges(current in json_value(), patch in json_value()) {
        let merged = patched_config(&current, &patch);
        if patch.is_object() {
            prop_assert!(merged.is_object());
        } else {
            prop_assert_eq!(merged, patch);
        }
    }
}
