//! Replica lag over the last hour, kept in memory (nothing on disk, lost on restart):
//! sampled from the status document every [`SAMPLE_EVERY`] by [`spawn_sampler`].

use super::model::member_lag;
use super::svg::Series;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How much history the plot shows (seconds).
pub const SPAN_SECS: i64 = 3600;
/// Sampling period.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Lag samples per (cluster, member), oldest first, at most [`SPAN_SECS`] old.
#[derive(Debug, Default)]
pub struct LagHistory {
    series: BTreeMap<(String, String), VecDeque<(i64, u64)>>,
}

impl LagHistory {
    /// Records every replica's lag of the status document at `now` (unix seconds) and
    /// forgets samples older than the span, and members no longer listed.
    pub fn record(&mut self, doc: &Value, now: i64) {
        let mut seen = std::collections::BTreeSet::new();
        for (scope, c) in doc
            .get("clusters")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for m in c
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(name), Some(lag)) =
                    (m.get("name").and_then(Value::as_str), member_lag(m))
                else {
                    continue;
                };
                let key = (scope.clone(), name.to_string());
                seen.insert(key.clone());
                self.series.entry(key).or_default().push_back((now, lag));
            }
        }
        self.series.retain(|k, v| {
            while v.front().is_some_and(|(t, _)| now - t > SPAN_SECS) {
                v.pop_front();
            }
            seen.contains(k) || !v.is_empty()
        });
    }

    /// The series of one cluster, for the plot.
    pub fn cluster(&self, scope: &str) -> Vec<Series> {
        self.series
            .iter()
            .filter(|((s, _), _)| s == scope)
            .map(|((_, m), v)| (m.clone(), v.iter().copied().collect()))
            .collect()
    }
}

/// Samples `board`'s document into `history` every [`SAMPLE_EVERY`] until the process ends.
pub fn spawn_sampler(
    board: Arc<crate::gitops::reconcile::api::StatusBoard>,
    history: Arc<RwLock<LagHistory>>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            let doc = board.doc.read().map(|d| d.clone()).unwrap_or_default();
            if let Ok(mut h) = history.write() {
                h.record(&doc, chrono::Utc::now().timestamp());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_one_hour() {
        let doc = |lag: u64| {
            json!({"clusters": {"acme": {"members": [
            {"name": "a", "role": "leader"}, {"name": "b", "lag": lag}]}}})
        };
        let mut h = LagHistory::default();
        h.record(&doc(1), 0);
        h.record(&doc(2), 1800);
        h.record(&doc(3), 3700);
        let s = h.cluster("acme");
        assert_eq!(s, vec![("b".to_string(), vec![(1800, 2), (3700, 3)])]);
        assert!(h.cluster("other").is_empty());
    }
}
