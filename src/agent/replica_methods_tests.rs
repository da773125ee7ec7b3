//! Replica method planning: order, arguments, basebackup options, refused options.

use super::*;
use crate::config::node::PostgresqlConfig;
use serde_json::json;

fn cfg(v: serde_json::Value) -> PostgresqlConfig {
    let mut base = json!({"data_dir": "/var/lib/pg/data"});
    if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
        b.extend(o.clone());
    }
    serde_json::from_value(base).expect("postgresql section")
}

fn source() -> CloneSource {
    CloneSource {
        connstring: "postgres://replicator@10.0.0.1:5432/postgres".into(),
    }
}

#[test]
fn default_is_basebackup_with_no_options() {
    let (plans, w) = plan_methods(&cfg(json!({})), "demo", Some(&source()));
    assert!(w.is_empty());
    assert_eq!(
        plans,
        vec![MethodPlan {
            name: "basebackup".into(),
            kind: MethodKind::Basebackup { options: vec![] }
        }]
    );
}

#[test]
fn custom_method_gets_its_keys_then_patronis_parameters() {
    let c = cfg(json!({
        "create_replica_methods": ["wal_e", "basebackup"],
        "wal_e": {"command": "/usr/bin/wale_restore --x 'a b'", "envdir": "/etc/wal-e", "threshold_megabytes": 10240, "use_iam": true, "keep_data": false, "no_leader": false},
        "basebackup": ["verbose", {"max-rate": "100M"}, {"checkpoint": "fast"}],
    }));
    let (plans, w) = plan_methods(&c, "demo", Some(&source()));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(plans.len(), 2);
    assert_eq!(
        plans[0].kind,
        MethodKind::Custom {
            argv: [
                "/usr/bin/wale_restore",
                "--x",
                "a b",
                "--envdir=/etc/wal-e",
                "--threshold_megabytes=10240",
                "--use_iam=True",
                "--scope=demo",
                "--role=replica",
                "--datadir=/var/lib/pg/data",
                "--connstring=postgres://replicator@10.0.0.1:5432/postgres",
            ]
            .map(String::from)
            .to_vec(),
            keep_data: false,
        }
    );
    assert_eq!(
        plans[1].kind,
        MethodKind::Basebackup {
            options: vec![
                "--verbose".into(),
                "--max-rate=100M".into(),
                "--checkpoint=fast".into()
            ]
        }
    );
}

#[test]
fn no_params_passes_only_the_sections_own_keys_and_command_defaults_to_the_name() {
    let c = cfg(json!({
        "create_replica_methods": ["pgbackrest", "restore_me"],
        "pgbackrest": {"command": "/usr/bin/pgbackrest --stanza=main --delta restore", "keep_data": true, "no_params": true},
        "restore_me": {"no_params": "on", "type": "standby"},
    }));
    let (plans, _) = plan_methods(&c, "demo", Some(&source()));
    assert_eq!(
        plans[0].kind,
        MethodKind::Custom {
            argv: ["/usr/bin/pgbackrest", "--stanza=main", "--delta", "restore"]
                .map(String::from)
                .to_vec(),
            keep_data: true,
        }
    );
    assert_eq!(
        plans[1].kind,
        MethodKind::Custom {
            argv: vec!["restore_me".into(), "--type=standby".into()],
            keep_data: false,
        }
    );
}

#[test]
fn basebackup_map_form_and_refused_options() {
    let mut w = Vec::new();
    let opts = basebackup_options(
        Some(&json!({"max-rate": "10M", "pgdata": "/x", "label": "clone"})),
        &mut w,
    );
    assert_eq!(opts, vec!["--max-rate=10M", "--label=clone"]);
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("pgdata"), "{w:?}");
    let mut w = Vec::new();
    let opts = basebackup_options(Some(&json!(["--verbose", {"a": 1, "b": 2}, 7])), &mut w);
    assert_eq!(opts, vec!["--verbose"]);
    assert_eq!(w.len(), 2, "{w:?}");
    let mut w = Vec::new();
    assert!(basebackup_options(Some(&json!("fast")), &mut w).is_empty());
    assert!(w[0].contains("expected a list or a map"));
}

#[test]
fn a_bad_command_line_is_reported() {
    let c = cfg(json!({
        "create_replica_methods": ["bad"],
        "bad": {"command": "/x 'open"},
    }));
    let (plans, w) = plan_methods(&c, "demo", Some(&source()));
    assert_eq!(
        plans[0].kind,
        MethodKind::Custom {
            argv: vec![],
            keep_data: false
        }
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("unbalanced"), "{w:?}");
}

#[test]
fn without_a_leader_only_no_leader_methods_run_with_an_empty_connstring() {
    let c = cfg(json!({
        "create_replica_methods": ["pgbackrest", "wal_g", "basebackup"],
        "pgbackrest": {"command": "pgbackrest restore", "no_leader": true},
        "wal_g": {"command": "wal-g backup-fetch"},
    }));
    assert!(any_without_leader(&c));
    let (plans, w) = plan_methods(&c, "demo", None);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        plans,
        vec![MethodPlan {
            name: "pgbackrest".into(),
            kind: MethodKind::Custom {
                argv: [
                    "pgbackrest",
                    "restore",
                    "--scope=demo",
                    "--role=replica",
                    "--datadir=/var/lib/pg/data",
                    "--connstring=",
                ]
                .map(String::from)
                .to_vec(),
                keep_data: false,
            }
        }]
    );
    assert!(!any_without_leader(&cfg(json!({}))));
    let legacy = cfg(json!({"create_replica_methods": ["x"], "x": {"no_master": 1}}));
    assert!(any_without_leader(&legacy));
}
