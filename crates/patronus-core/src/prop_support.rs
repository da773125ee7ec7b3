//! Strategies shared by the property tests (`prop_tests.rs` files next to the code): the
//! shapes of data other people write — any JSON tree, scalars of every type at the edges
//! (`u64::MAX`, `i64::MIN`, huge floats), strings with YAML punctuation, control and
//! non-ASCII characters, and the key names our parsers look for.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Cases per property: enough to hit type confusions at every known path, few enough that
/// `cargo test --lib` stays fast.
pub const CASES: u32 = 96;

/// The proptest configuration of every property test: bounded cases, no regression files.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES)
    }
}

/// Key names the parsers look for (node file, dynamic config, DCS values, REST bodies,
/// repository files), so that random trees often put a wrong type where a field is read.
const KEYS: &[&str] = &[
    "name",
    "scope",
    "namespace",
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "primary_start_timeout",
    "synchronous_mode",
    "synchronous_node_count",
    "pause",
    "postgresql",
    "parameters",
    "pg_hba",
    "use_pg_rewind",
    "slots",
    "leader",
    "member",
    "candidate",
    "sync_standby",
    "quorum",
    "optime",
    "scheduled_at",
    "ops",
    "tags",
    "applied",
    "state",
    "role",
    "xlog_location",
    "timeline",
    "conn_url",
    "api_url",
    "nofailover",
    "failover_priority",
    "config",
    "members",
    "type",
    "id",
    "not_before",
    "window",
    "preconditions",
    "max_lag_bytes",
    "restart_policy",
    "maintenance_windows",
    "dcs",
    "etcd3",
    "hosts",
    "ignore",
    "drift",
    "work_mem",
];

/// Strings others write: words, numbers as text, YAML/JSON punctuation, any printable
/// Unicode, control characters, and a few classics.
pub fn wild_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{0,12}",
        "-?[0-9]{1,25}",
        "-?[0-9]{1,4}\\.[0-9]{1,4}(e[+-]?[0-9]{1,3})?",
        "[ \\-:{}\\[\\],'\"&*!|>#%@`?.a-z0-9]{0,24}",
        "\\PC{0,16}",
        "[\\x00-\\x1f\\x7f]{0,4}",
        prop::sample::select(vec![
            "on",
            "off",
            "yes",
            "",
            "  ",
            "1e400",
            "NaN",
            "é_mem",
            "日本語",
            "🐘*",
            "a/b~c",
            "30s",
            "1h",
            "Sat 02:00-04:00 UTC",
            "2030-01-01T00:00:00+00:00",
            "null",
            "{bad",
        ])
        .prop_map(str::to_string),
    ]
}

/// A key: mostly one our parsers read, sometimes anything.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => wild_string(),
    ]
}

/// A JSON scalar of any type, edges included.
pub fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![0, 1, u64::MAX, i64::MAX as u64, u32::MAX as u64])
            .prop_map(Value::from),
        Just(Value::from(i64::MIN)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        wild_string().prop_map(Value::String),
    ]
}

/// Any JSON tree (a few levels deep, a few items per level).
pub fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Raw text of a value someone wrote: JSON of any tree, or any string (often not JSON).
pub fn raw_text() -> impl Strategy<Value = String> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        wild_string(),
        (json_value(), 0usize..64).prop_map(|(v, cut)| {
            // Truncated JSON, cut on a character boundary.
            let s = v.to_string();
            s.chars().take(cut).collect()
        }),
    ]
}
