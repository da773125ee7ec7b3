use super::one_cluster_problems as problems;

#[test]
fn valid_slots_pass() {
    let p = problems(
        "config:\n  slots:\n    cdc:\n      type: logical\n      database: app\n      plugin: pgoutput\n    \
         archiver:\n      type: physical\n    old: null\n  ignore_slots:\n    - name: ext_slot\n    - type: logical\n      database: app\n",
    );
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn bad_slots_are_named() {
    let p = problems(
        "config:\n  slots:\n    Bad-Name:\n      type: physical\n    cdc:\n      type: logical\n      database: app\n    \
         odd:\n      type: sideways\n  ignore_slots:\n    - {}\n",
    );
    let text: Vec<String> = p
        .iter()
        .map(|x| format!("{} {}", x.path, x.reason))
        .collect();
    let has = |path: &str| p.iter().any(|x| x.path == path);
    assert!(has("config.slots.Bad-Name"), "{text:?}");
    assert!(has("config.slots.cdc"), "{text:?}");
    assert!(has("config.slots.odd"), "{text:?}");
    assert!(has("config.ignore_slots.0"), "{text:?}");
    assert!(
        p.iter()
            .any(|x| x.path == "config.slots.cdc" && x.reason.contains("database and plugin")),
        "{text:?}"
    );
}

#[test]
fn standby_cluster_is_validated() {
    let p = problems(
        "config:\n  standby_cluster:\n    host: 10.0.0.1\n    port: 5432\n    primary_slot_name: dr\n    \
         create_replica_methods: [basebackup]\n",
    );
    assert!(p.is_empty(), "{p:?}");
    let p = problems("config:\n  standby_cluster: null\n");
    assert!(p.is_empty(), "{p:?}");
    let p =
        problems("config:\n  standby_cluster:\n    host: 10.0.0.1\n    port: 99999\n    hots: x\n");
    let text: Vec<String> = p
        .iter()
        .map(|x| format!("{} {}", x.path, x.reason))
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("standby_cluster") && t.contains("port")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("standby_cluster") && t.contains("hots")),
        "{text:?}"
    );
}
