//! What the dashboard needs from `GET /status` beyond the counters: per cluster the members
//! as `patronus list` shows them (role, state, TL, lags, tags, pending restart), the
//! timeline history, the live and the desired dynamic configuration, the sync mode, pause,
//! the standby-cluster link, the recent drift events and the operation notes (restart-wave
//! progress, why an operation waits). Pure; the caller redacts the whole document.

use crate::dcs::Cluster;
use crate::gitops::desired::DesiredCluster;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Drift events kept per cluster for the dashboard (newest last).
pub const DRIFT_LOG_LEN: usize = 50;

/// The detail fields of one cluster's entry in the status document.
pub fn cluster_detail(
    scope: &str,
    live: &Cluster,
    desired: Option<&DesiredCluster>,
    drift_log: &[Value],
    notes: &BTreeMap<String, String>,
) -> Map<String, Value> {
    let listed = crate::api::views::cluster_json(live, scope);
    let members = listed.get("members").cloned().unwrap_or(json!([]));
    let config = live.config.as_ref().map(|c| c.value.clone());
    let get = |k: &str| config.as_ref().and_then(|c| c.get(k)).cloned();
    let timeline = members
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("timeline").and_then(Value::as_u64))
        .max();
    let history: Vec<Value> = live
        .history
        .iter()
        .map(|h| {
            json!({"timeline": h.timeline, "lsn": h.lsn, "reason": h.reason,
                "at": h.timestamp, "new_leader": h.new_leader})
        })
        .collect();
    let prefix = format!("{scope}/");
    let op_notes: Map<String, Value> = notes
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), json!(v))))
        .collect();
    let mut out = Map::new();
    out.insert("members".into(), members);
    out.insert("paused".into(), json!(live.is_paused()));
    out.insert("timeline".into(), json!(timeline));
    out.insert("history".into(), Value::Array(history));
    out.insert("sync_mode".into(), json!(sync_mode(config.as_ref())));
    out.insert("standby_cluster".into(), get("standby_cluster").into());
    out.insert("live_config".into(), config.unwrap_or(Value::Null));
    out.insert(
        "desired_config".into(),
        desired.map(|d| d.config.clone()).into(),
    );
    let declared: Vec<Value> = desired
        .into_iter()
        .flat_map(|d| &d.ops)
        .map(|o| json!({"id": o.id, "type": o.kind, "file": o.file}))
        .collect();
    out.insert("declared_ops".into(), Value::Array(declared));
    out.insert("drift_log".into(), Value::Array(drift_log.to_vec()));
    out.insert("op_notes".into(), Value::Object(op_notes));
    out
}

/// Patroni's replication mode from the dynamic config: `quorum`, `strict`, `on` or `off`
/// (read as the agent reads it, [`crate::config::SyncMode::label_of_config`]).
fn sync_mode(config: Option<&Value>) -> &'static str {
    crate::config::SyncMode::label_of_config(config)
}

/// Appends `event` to a bounded drift log.
pub fn push_drift(log: &mut Vec<Value>, event: Value) {
    log.push(event);
    if log.len() > DRIFT_LOG_LEN {
        let extra = log.len() - DRIFT_LOG_LEN;
        log.drain(..extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_modes() {
        assert_eq!(sync_mode(None), "off");
        assert_eq!(sync_mode(Some(&json!({"synchronous_mode": true}))), "on");
        assert_eq!(
            sync_mode(Some(
                &json!({"synchronous_mode": true, "synchronous_mode_strict": true})
            )),
            "strict"
        );
        assert_eq!(
            sync_mode(Some(&json!({"synchronous_mode": "quorum"}))),
            "quorum"
        );
    }

    #[test]
    fn drift_log_is_bounded() {
        let mut log = vec![];
        for i in 0..(DRIFT_LOG_LEN + 7) {
            push_drift(&mut log, json!(i));
        }
        assert_eq!(log.len(), DRIFT_LOG_LEN);
        assert_eq!(log[0], json!(7));
    }

    #[test]
    fn notes_of_this_cluster_only() {
        let notes = BTreeMap::from([
            ("acme/restart-waves".to_string(), "wave 1 of 2".to_string()),
            ("other/x".to_string(), "no".to_string()),
        ]);
        let d = cluster_detail("acme", &Cluster::default(), None, &[], &notes);
        assert_eq!(d["op_notes"], json!({"restart-waves": "wave 1 of 2"}));
        assert_eq!(d["members"], json!([]));
        assert_eq!(d["sync_mode"], "off");
    }
}
