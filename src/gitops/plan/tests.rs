use super::*;
use crate::gitops::desired::DesiredCluster;
use crate::gitops::observed::{ObservedCluster, ObservedMember};
use serde_json::json;

fn desired(config: Value) -> DesiredCluster {
    DesiredCluster {
        scope: "acme".into(),
        file: "clusters/acme/cluster.yaml".into(),
        config,
        tags: Default::default(),
        prune: false,
        restart_policy: "manual".into(),
        windows: vec![],
        ops: vec![],
        dcs: None,
    }
}

fn observed(config: Value) -> ObservedCluster {
    let m = |n: &str, role: &str| ObservedMember {
        name: n.into(),
        role: role.into(),
        state: "running".into(),
        ..Default::default()
    };
    ObservedCluster {
        scope: "acme".into(),
        exists: true,
        config: Some(config),
        config_version: 42,
        gitops: None,
        gitops_version: 0,
        leader: Some("m1".into()),
        members: vec![m("m1", "leader"), m("m2", "replica"), m("m3", "replica")],
    }
}

fn cat() -> &'static GucCatalog {
    GucCatalog::postgresql15()
}

#[test]
fn reload_change_is_classified_and_diffed() {
    let live = json!({"ttl": 30, "postgresql": {"parameters": {"work_mem": "4MB"}}});
    let p = plan_cluster(
        &desired(json!({"postgresql": {"parameters": {"work_mem": "8MB"}}})),
        &observed(live),
        cat(),
    );
    assert!(p.changed);
    assert_eq!(p.params.len(), 1);
    assert_eq!(p.params[0].class, ChangeClass::Reload);
    assert!(
        p.config_diff.contains("+    work_mem: 8MB"),
        "{}",
        p.config_diff
    );
    assert!(p.restart_waves.is_empty());
    assert_eq!(p.unmanaged, vec!["ttl".to_string()]);
    assert_eq!(p.target_config["ttl"], 30, "unmanaged keys are kept");
    assert_eq!(p.config_version, 42);
}

#[test]
fn no_change_plans_nothing() {
    let live = json!({"postgresql": {"parameters": {"work_mem": "8MB"}}});
    let p = plan_cluster(&desired(live.clone()), &observed(live), cat());
    assert!(!p.changed);
    assert!(p.config_diff.is_empty());
}

#[test]
fn restart_and_ordered_restart_waves() {
    let live =
        json!({"postgresql": {"parameters": {"shared_buffers": "16MB", "max_connections": 100}}});
    let p = plan_cluster(
        &desired(json!({"postgresql": {"parameters": {"shared_buffers": "32MB"}}})),
        &observed(live.clone()),
        cat(),
    );
    assert_eq!(p.params[0].class, ChangeClass::Restart);
    assert_eq!(
        p.restart_waves.last().unwrap(),
        &vec!["m1".to_string()],
        "primary last: {:?}",
        p.restart_waves
    );
    let p = plan_cluster(
        &desired(json!({"postgresql": {"parameters": {"max_connections": 50}}})),
        &observed(live.clone()),
        cat(),
    );
    assert_eq!(p.params[0].class, ChangeClass::RestartPrimaryFirst);
    assert_eq!(
        p.restart_waves[0],
        vec!["m1".to_string()],
        "decrease: primary first"
    );
    let p = plan_cluster(
        &desired(json!({"postgresql": {"parameters": {"max_connections": 200}}})),
        &observed(live),
        cat(),
    );
    assert_eq!(p.params[0].class, ChangeClass::RestartReplicasFirst);
    assert_eq!(p.restart_waves.last().unwrap(), &vec!["m1".to_string()]);
}

#[test]
fn prune_removes_unmanaged_and_null_deletes() {
    let live = json!({"ttl": 30, "postgresql": {"parameters": {"work_mem": "4MB", "temp_buffers": "16MB"}}});
    let mut d =
        desired(json!({"postgresql": {"parameters": {"work_mem": "4MB", "temp_buffers": null}}}));
    let p = plan_cluster(&d, &observed(live.clone()), cat());
    assert!(p
        .target_config
        .pointer("/postgresql/parameters/temp_buffers")
        .is_none());
    assert_eq!(p.target_config["ttl"], 30);
    d.prune = true;
    let p = plan_cluster(&d, &observed(live), cat());
    assert!(p.target_config.get("ttl").is_none());
    assert!(p.unmanaged.is_empty());
}

#[test]
fn tag_changes_and_failover_warning() {
    let mut d = desired(json!({}));
    d.tags.insert(
        "m2".into(),
        json!({"nofailover": true}).as_object().unwrap().clone(),
    );
    d.tags.insert(
        "m3".into(),
        json!({"nofailover": true}).as_object().unwrap().clone(),
    );
    let p = plan_cluster(&d, &observed(json!({})), cat());
    assert!(p.changed);
    assert_eq!(p.tags.len(), 2);
    assert_eq!(p.tags[0].new, Some(json!(true)));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("no replica is left that can fail over")),
        "{:?}",
        p.warnings
    );
    let mut obs = observed(json!({}));
    obs.gitops = Some(json!({"tags": {"m2": {"nofailover": true}, "m3": {"nofailover": true}}}));
    assert!(!plan_cluster(&d, &obs, cat()).changed, "already recorded");
}

#[test]
fn capacity_warnings() {
    let d = desired(
        json!({"synchronous_mode_strict": true, "postgresql": {"parameters": {"max_wal_senders": 2}}}),
    );
    let mut obs = observed(json!({}));
    let p = plan_cluster(&d, &obs, cat());
    assert!(
        p.warnings.iter().any(|w| w.contains("max_wal_senders = 2")),
        "{:?}",
        p.warnings
    );
    obs.members.truncate(1);
    let p = plan_cluster(&d, &obs, cat());
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("synchronous_mode_strict")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn slots_in_git_are_the_whole_set_and_shown_in_every_format() {
    let live = json!({"ttl": 30, "slots": {
        "old_phys": {"type": "physical"},
        "keep": {"type": "physical"}
    }});
    let git = json!({"slots": {
        "keep": {"type": "physical"},
        "cdc": {"type": "logical", "database": "app", "plugin": "pgoutput"},
        "gone": null
    }});
    let p = plan_cluster(&desired(git), &observed(live), cat());
    assert!(p.changed);
    let got: Vec<(&str, &str)> = p
        .slots
        .iter()
        .map(|c| (c.name.as_str(), c.verb()))
        .collect();
    assert_eq!(got, vec![("cdc", "added"), ("old_phys", "removed")]);
    assert_eq!(
        p.target_config["slots"],
        json!({"keep": {"type": "physical"}, "cdc": {"type": "logical", "database": "app", "plugin": "pgoutput"}})
    );
    assert!(
        p.unmanaged.iter().all(|k| !k.starts_with("slots.")),
        "{:?}",
        p.unmanaged
    );
    let plans = [p];
    let text = crate::gitops::render::text(&plans);
    assert!(text.contains("replication slots:"), "{text}");
    assert!(text.contains("added cdc: logical app/pgoutput"), "{text}");
    assert!(text.contains("removed old_phys: physical"), "{text}");
    let md = crate::gitops::render::markdown(&plans);
    assert!(
        md.contains("| `cdc` | added | logical app/pgoutput |"),
        "{md}"
    );
    assert!(md.contains("| `old_phys` | removed | physical |"), "{md}");
    let js: Value = serde_json::from_str(&crate::gitops::render::json(&plans)).unwrap();
    assert_eq!(js["clusters"][0]["slots"][0]["name"], "cdc");
    assert_eq!(js["clusters"][0]["slots"][1]["new"], Value::Null);
}

#[test]
fn role_specific_parameters_are_planned_and_classified() {
    let live = json!({"postgresql": {"parameters": {"work_mem": "4MB"}}});
    let git = json!({"postgresql": {
        "parameters_replica": {"log_min_duration_statement": "250ms"},
        "parameters_primary": {"shared_buffers": "256MB"}}});
    let p = plan_cluster(&desired(git), &observed(live), cat());
    let names: Vec<(&str, ChangeClass)> = p
        .params
        .iter()
        .map(|c| (c.name.as_str(), c.class.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("parameters_primary.shared_buffers", ChangeClass::Restart),
            (
                "parameters_replica.log_min_duration_statement",
                ChangeClass::Reload
            ),
        ]
    );
    assert!(
        !p.restart_waves.is_empty(),
        "a restart-only role parameter needs a wave"
    );
}
