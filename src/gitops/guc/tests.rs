//! Tests of the GUC checker against the shipped PostgreSQL 15 catalog.

use serde_json::{json, Value};

use super::*;

fn pg15() -> &'static GucCatalog {
    GucCatalog::postgresql15()
}

fn ok(name: &str, value: Value) {
    if let Err(e) = pg15().check(name, &value) {
        panic!("{name} = {value} rejected: {e}");
    }
}

fn err(name: &str, value: Value) -> String {
    match pg15().check(name, &value) {
        Ok(()) => panic!("{name} = {value} accepted"),
        Err(e) => e,
    }
}

fn base(name: &str, text: &str) -> f64 {
    let def = pg15().get(name).expect("known parameter");
    parse_in_base_units(def, text).expect("valid value")
}

#[test]
fn embedded_catalog_loads() {
    let c = pg15();
    assert_eq!(c.major(), 15);
    assert!(c.len() > 300, "only {} parameters", c.len());
    let wm = c.get("work_mem").expect("work_mem");
    assert_eq!(
        (wm.vartype.as_str(), wm.unit.as_deref()),
        ("integer", Some("kB"))
    );
    assert_eq!(
        c.get("shared_buffers").and_then(|d| d.unit.as_deref()),
        Some("8kB")
    );
}

#[test]
fn lookup_is_case_insensitive() {
    assert_eq!(
        pg15().get("datestyle").map(|d| d.name.as_str()),
        Some("DateStyle")
    );
    assert_eq!(
        pg15().get("WORK_MEM").map(|d| d.name.as_str()),
        Some("work_mem")
    );
    ok("Work_Mem", json!("4MB"));
}

#[test]
fn from_json_rejects_bad_catalogs() {
    assert!(GucCatalog::from_json("not json").is_err());
    assert!(GucCatalog::from_json(r#"{"parameters": []}"#).is_err());
    let entry = |name: &str, vartype: &str, extra: &str| {
        format!(r#"{{"name": "{name}", "vartype": "{vartype}", "context": "user"{extra}}}"#)
    };
    let file = |params: Vec<String>| {
        format!(
            r#"{{"postgresql_major": 15, "parameters": [{}]}}"#,
            params.join(",")
        )
    };
    let good = file(vec![
        entry("a", "bool", ""),
        entry("b", "integer", r#", "min": "1""#),
    ]);
    let c = GucCatalog::from_json(&good).expect("valid");
    assert_eq!((c.len(), c.is_empty()), (2, false));
    for bad in [
        file(vec![entry("a", "bool", ""), entry("A", "bool", "")]),
        file(vec![entry("a", "colour", "")]),
        file(vec![entry("a", "enum", "")]),
        file(vec![entry("a", "integer", r#", "max": "lots""#)]),
        file(vec![entry("a", "integer", r#", "unit": "parsec""#)]),
    ] {
        assert!(GucCatalog::from_json(&bad).is_err(), "{bad}");
    }
}

#[test]
fn unknown_names_get_suggestions() {
    assert_eq!(
        err("workmem", json!("4MB")),
        r#"unknown parameter "workmem" (did you mean "work_mem"?)"#
    );
    assert_eq!(
        err("frobnicate_everything", json!(1)),
        r#"unknown parameter "frobnicate_everything""#
    );
    assert_eq!(pg15().suggest("shared_buffer"), vec!["shared_buffers"]);
    let wal = pg15().suggest("max_wal");
    assert!(!wal.is_empty() && wal.len() <= 3, "{wal:?}");
    assert!(wal.iter().all(|n| n.starts_with("max_wal")), "{wal:?}");
    assert!(pg15().suggest("zzzzzzzzzzzzzzzz").is_empty());
    let several = unknown_message("x", &["a".into(), "b".into(), "c".into()]);
    assert_eq!(
        several,
        r#"unknown parameter "x" (did you mean "a", "b" or "c"?)"#
    );
}

#[test]
fn suggestions_are_ranked_by_distance() {
    // "work_mem" is one edit away, "maintenance_work_mem" much further.
    assert_eq!(
        pg15().suggest("work_men").first().map(String::as_str),
        Some("work_mem")
    );
    assert_eq!(levenshtein("kitten", "sitting"), 3);
    assert_eq!(levenshtein("", "abc"), 3);
    assert_eq!(levenshtein("same", "same"), 0);
}

#[test]
fn extension_parameters_are_not_checked() {
    ok("auto_explain.log_min_duration", json!("250ms"));
    ok("pg_stat_statements.max", json!(10000));
    ok("my.custom_flag", json!(true));
    assert!(err("auto_explain.log_analyze", json!([1])).contains("single value"));
}

#[test]
fn non_scalar_values_are_rejected() {
    assert!(err("work_mem", json!(["4MB"])).contains("not a list"));
    assert!(err("application_name", json!({"a": 1})).contains("not a mapping"));
    assert!(err("application_name", Value::Null).contains("no value"));
}

#[test]
fn booleans() {
    for v in [
        "on", "off", "true", "false", "yes", "no", "1", "0", "t", "of", "TRUE", "Y", "n",
    ] {
        ok("hot_standby", json!(v));
    }
    ok("hot_standby", json!(true));
    ok("hot_standby", json!(0));
    for v in ["maybe", "o", "", " on", "on ", "2", "onn"] {
        assert_eq!(
            err("hot_standby", json!(v)),
            format!(r#"invalid value for boolean parameter "hot_standby": "{v}""#)
        );
    }
    assert!(err("hot_standby", json!(2)).contains("boolean"));
}

#[test]
fn memory_units_convert_to_base_unit() {
    assert_eq!(base("work_mem", "64MB"), 65536.0);
    assert_eq!(base("work_mem", "1GB"), 1048576.0);
    assert_eq!(base("work_mem", "2048B"), 2.0);
    assert_eq!(base("work_mem", " 64 MB "), 65536.0);
    assert_eq!(base("shared_buffers", "128MB"), 16384.0);
    assert_eq!(base("shared_buffers", "1TB"), 134217728.0);
    ok("work_mem", json!("64MB"));
    ok("work_mem", json!(4096));
    ok("work_mem", json!("+4MB"));
    ok("shared_buffers", json!("128MB"));
    ok("shared_buffers", json!("127.99MB"));
    ok("max_wal_size", json!("1GB"));
}

#[test]
fn time_units_convert_to_base_unit() {
    assert_eq!(base("checkpoint_timeout", "5min"), 300.0);
    assert_eq!(base("checkpoint_timeout", "1h"), 3600.0);
    assert_eq!(base("checkpoint_timeout", "1d"), 86400.0);
    assert_eq!(base("statement_timeout", "1.5s"), 1500.0);
    assert_eq!(base("statement_timeout", "1500us"), 1.5);
    ok("checkpoint_timeout", json!("5min"));
    ok("checkpoint_timeout", json!("5 min"));
    ok("checkpoint_timeout", json!(300));
    ok("statement_timeout", json!("30s"));
    ok("autovacuum_naptime", json!("1min"));
    assert!(err("checkpoint_timeout", json!("2d")).contains("outside the valid range"));
}

#[test]
fn wrong_or_unknown_units_are_rejected() {
    assert_eq!(
        err("work_mem", json!("12 parsecs")),
        r#"invalid value for parameter "work_mem": "12 parsecs" (valid units: B, kB, MB, GB, TB)"#
    );
    assert_eq!(
        err("work_mem", json!("5min")),
        r#"invalid value for parameter "work_mem": "5min" (valid units: B, kB, MB, GB, TB)"#
    );
    // Units are case-sensitive, as in PostgreSQL.
    assert!(err("work_mem", json!("64mb")).contains("valid units"));
    assert_eq!(
        err("checkpoint_timeout", json!("5MB")),
        r#"invalid value for parameter "checkpoint_timeout": "5MB" (valid units: us, ms, s, min, h, d)"#
    );
    assert_eq!(
        err("max_connections", json!("100 MB")),
        r#"invalid value for parameter "max_connections": "100 MB""#
    );
    for v in ["", "MB", "lots", "1e", "64 M B", "1.2.3"] {
        assert!(
            err("work_mem", json!(v)).starts_with("invalid value"),
            "{v:?}"
        );
    }
}

#[test]
fn integer_ranges_and_rounding() {
    assert_eq!(
        err("max_connections", json!("-1")),
        r#"-1 is outside the valid range for parameter "max_connections" (1 .. 262143)"#
    );
    assert_eq!(
        err("max_connections", json!(-1)),
        r#"-1 is outside the valid range for parameter "max_connections" (1 .. 262143)"#
    );
    assert_eq!(
        err("work_mem", json!("1kB")),
        r#"1 kB is outside the valid range for parameter "work_mem" (64 .. 2147483647)"#
    );
    assert_eq!(
        err("shared_buffers", json!("1kB")),
        r#"0 8kB is outside the valid range for parameter "shared_buffers" (16 .. 1073741823)"#
    );
    assert!(err("max_connections", json!(262144)).contains("outside"));
    assert!(err("work_mem", json!("3TB")).contains("outside"));
    ok("max_connections", json!(262143));
    ok("max_connections", json!("1e2"));
    // PostgreSQL rounds fractional integer input to the nearest integer.
    ok("max_connections", json!("100.5"));
    ok("max_connections", json!(100.0));
    ok("work_mem", json!("1.5MB"));
    ok("work_mem", json!("64.4"));
    assert!(err("work_mem", json!("63.4")).contains("63 kB is outside"));
    assert!(err("max_connections", json!("0.4")).starts_with("0 is outside"));
}

#[test]
fn reals() {
    ok("random_page_cost", json!(1.1));
    ok("random_page_cost", json!("1.1"));
    ok("random_page_cost", json!(4));
    ok("random_page_cost", json!("1e3"));
    ok("random_page_cost", json!(".5"));
    ok("random_page_cost", json!(1.7976931348623157e308));
    assert_eq!(
        err("random_page_cost", json!(-0.5)),
        r#"-0.5 is outside the valid range for parameter "random_page_cost" (0 .. 1.79769e+308)"#
    );
    assert!(err("random_page_cost", json!("1e400")).contains("outside"));
    assert!(err("random_page_cost", json!("nan")).starts_with("invalid value"));
    assert!(err("random_page_cost", json!("5ms")).starts_with("invalid value"));
    assert!(err("random_page_cost", json!(true)).starts_with("invalid value"));
    ok("checkpoint_completion_target", json!(0.9));
    assert!(err("checkpoint_completion_target", json!(1.5)).contains("(0 .. 1)"));
    // A real with a time unit keeps its fraction.
    assert_eq!(base("vacuum_cost_delay", "1500us"), 1.5);
    ok("vacuum_cost_delay", json!("1.5ms"));
    assert!(err("vacuum_cost_delay", json!("200")).contains("200 ms is outside"));
}

#[test]
fn enums() {
    for v in [
        "minimal",
        "replica",
        "logical",
        "LOGICAL",
        "hot_standby",
        "archive",
    ] {
        ok("wal_level", json!(v));
    }
    assert_eq!(
        err("wal_level", json!("full")),
        r#"invalid value for parameter "wal_level": "full" (allowed: minimal, replica, logical)"#
    );
    for v in [
        "local",
        "remote_write",
        "remote_apply",
        "on",
        "off",
        "ON",
        "true",
        "0",
    ] {
        ok("synchronous_commit", json!(v));
    }
    ok("synchronous_commit", json!(false));
    ok("synchronous_commit", json!(1));
    assert_eq!(
        err("synchronous_commit", json!("maybe")),
        r#"invalid value for parameter "synchronous_commit": "maybe" (allowed: local, remote_write, remote_apply, on, off)"#
    );
    // Only enums that list on/off take the boolean aliases; prefixes are not enough.
    assert!(err("synchronous_commit", json!("t")).contains("allowed"));
    assert!(err("wal_level", json!(true)).contains("\"on\""));
    ok("client_min_messages", json!("info"));
    ok("default_transaction_isolation", json!("Read Committed"));
}

#[test]
fn strings_take_any_scalar() {
    ok("application_name", json!("patronus"));
    ok("application_name", json!(""));
    ok("application_name", json!(42));
    ok("application_name", json!(true));
    ok("log_line_prefix", json!("%m [%p] "));
}

#[test]
fn classify_by_context() {
    let c = pg15();
    assert_eq!(
        c.classify("work_mem", Some("4MB"), Some("8MB")),
        ChangeClass::Reload
    );
    assert_eq!(
        c.classify("checkpoint_timeout", None, Some("10min")),
        ChangeClass::Reload
    );
    assert_eq!(
        c.classify("log_min_duration_statement", None, Some("1s")),
        ChangeClass::Reload
    );
    assert_eq!(
        c.classify("log_connections", None, Some("on")),
        ChangeClass::Reload
    );
    assert_eq!(
        c.classify("shared_buffers", Some("128MB"), Some("1GB")),
        ChangeClass::Restart
    );
    assert_eq!(
        c.classify("wal_level", Some("replica"), Some("logical")),
        ChangeClass::Restart
    );
    assert_eq!(
        c.classify("block_size", None, Some("16384")),
        ChangeClass::Unknown
    );
    assert_eq!(
        c.classify("no_such_thing", None, Some("1")),
        ChangeClass::Unknown
    );
    assert_eq!(
        c.classify("auto_explain.log_min_duration", None, Some("1")),
        ChangeClass::Unknown
    );
}

#[test]
fn classify_replica_sensitive_parameters() {
    let c = pg15();
    use ChangeClass::*;
    assert_eq!(
        c.classify("max_connections", Some("100"), Some("200")),
        RestartReplicasFirst
    );
    assert_eq!(
        c.classify("max_connections", Some("200"), Some("100")),
        RestartPrimaryFirst
    );
    assert_eq!(
        c.classify("max_connections", None, Some("100")),
        RestartReplicasFirst
    );
    assert_eq!(
        c.classify("max_connections", Some("100"), Some("100")),
        Restart
    );
    // Removing the setting goes back to the default (100).
    assert_eq!(
        c.classify("max_connections", Some("500"), None),
        RestartPrimaryFirst
    );
    assert_eq!(
        c.classify("max_connections", Some("bogus"), Some("10")),
        RestartReplicasFirst
    );
    assert_eq!(
        c.classify("MAX_WAL_SENDERS", Some("10"), Some("5")),
        RestartPrimaryFirst
    );
    for name in [
        "max_prepared_transactions",
        "max_locks_per_transaction",
        "max_worker_processes",
        "max_wal_senders",
    ] {
        assert_eq!(
            c.classify(name, Some("8"), Some("64")),
            RestartReplicasFirst,
            "{name}"
        );
        assert_eq!(
            c.classify(name, Some("64"), Some("8")),
            RestartPrimaryFirst,
            "{name}"
        );
    }
    let json = serde_json::to_string(&RestartReplicasFirst).expect("serializes");
    assert_eq!(json, r#""restart-replicas-first""#);
}
