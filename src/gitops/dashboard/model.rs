//! The dashboard's typed reading of the reconciler's status document (`GET /status`):
//! one [`ClusterView`] per cluster, with the health rule in one place. Pure; a field that
//! is missing or of the wrong type reads as absent, never as a panic.

use serde_json::Value;

/// Health colour of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Leader present, every member up, nothing pending.
    Healthy,
    /// Serving, but something needs a look (member down, live config not git's, lag,
    /// pending restart, pause).
    Degraded,
    /// No leader: nobody accepts writes.
    Down,
}

impl Health {
    /// CSS class and text of the badge.
    pub fn label(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

/// Replication lag (bytes) above which a cluster shows as degraded.
pub const LAG_WARN_BYTES: u64 = 16 * 1024 * 1024;

/// One cluster as the fleet and cluster pages read it.
#[derive(Debug, Clone)]
pub struct ClusterView<'a> {
    /// Scope.
    pub scope: &'a str,
    /// The whole entry of the status document.
    pub raw: &'a Value,
    /// Leader lock holder.
    pub leader: Option<&'a str>,
    /// Members (objects as `GET /cluster` lists them).
    pub members: Vec<&'a Value>,
    /// Members running or streaming.
    pub up: usize,
    /// Largest replica lag in bytes (None when no replica reports one).
    pub worst_lag: Option<u64>,
    /// Current timeline.
    pub timeline: Option<u64>,
    /// Members with a pending restart.
    pub pending_restarts: u64,
    /// Drift events seen since the reconciler started.
    pub drift: u64,
    /// `synchronous_mode` (off, on, strict, quorum).
    pub sync_mode: &'a str,
    /// Cluster paused.
    pub paused: bool,
    /// Keys whose live value is not git's right now.
    pub drifted_now: usize,
}

/// A member is up when PostgreSQL runs (primary) or replicates.
pub fn member_up(m: &Value) -> bool {
    matches!(
        m.get("state").and_then(Value::as_str),
        Some("running" | "streaming" | "in archive recovery")
    )
}

/// A member's lag in bytes, when it reports a number.
pub fn member_lag(m: &Value) -> Option<u64> {
    m.get("lag").and_then(Value::as_u64)
}

impl<'a> ClusterView<'a> {
    /// Reads one entry of `clusters` in the status document.
    pub fn read(scope: &'a str, raw: &'a Value) -> ClusterView<'a> {
        let members: Vec<&Value> = raw
            .get("members")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let num = |k: &str| raw.get(k).and_then(Value::as_u64).unwrap_or(0);
        ClusterView {
            scope,
            raw,
            leader: raw.get("leader").and_then(Value::as_str),
            up: members.iter().filter(|m| member_up(m)).count(),
            worst_lag: members.iter().filter_map(|m| member_lag(m)).max(),
            members,
            timeline: raw.get("timeline").and_then(Value::as_u64),
            pending_restarts: num("pending_restarts"),
            drift: num("drift_events"),
            sync_mode: raw
                .get("sync_mode")
                .and_then(Value::as_str)
                .unwrap_or("off"),
            paused: raw.get("paused").and_then(Value::as_bool).unwrap_or(false),
            drifted_now: super::diff::drifted(raw.get("desired_config"), raw.get("live_config")),
        }
    }

    /// The health rule: no leader is down; anything needing a look is degraded.
    pub fn health(&self) -> Health {
        if self.leader.is_none() {
            return Health::Down;
        }
        let lagging = self.worst_lag.is_some_and(|l| l > LAG_WARN_BYTES);
        if self.up < self.members.len()
            || self.members.is_empty()
            || lagging
            || self.pending_restarts > 0
            || self.paused
            || self.drifted_now > 0
        {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }

    /// The `applied` record of the gitops key: (sha, author, applied_at).
    pub fn applied(&self) -> Option<(&'a str, &'a str, &'a str)> {
        let a = self.raw.get("applied")?;
        let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
        Some((s("commit"), s("author"), s("applied_at")))
    }
}

/// Every cluster of the status document, sorted by scope.
pub fn clusters(doc: &Value) -> Vec<ClusterView<'_>> {
    doc.get("clusters")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(scope, raw)| ClusterView::read(scope, raw))
        .collect()
}

/// "5 s", "3 min", "2 h", "4 d" from an RFC 3339 time to `now`; empty when unreadable.
pub fn age(at: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) else {
        return String::new();
    };
    let s = (now - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// An RFC 3339 time as `2026-11-30 07:12:57 UTC`; other text unchanged.
pub fn when(at: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => at.to_string(),
    }
}

/// Bytes as the lag columns show them: `0 B`, `12 kB`, `3.4 MB`, `1.2 GB`.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if f < K * K {
        format!("{:.0} kB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MB", f / K / K)
    } else {
        format!("{:.1} GB", f / K / K / K)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_rule() {
        let m = |s: &str, lag: u64| json!({"name": "x", "state": s, "lag": lag});
        let ok = json!({"leader": "a", "members": [m("running", 0), m("streaming", 0)]});
        assert_eq!(ClusterView::read("c", &ok).health(), Health::Healthy);
        let down = json!({"members": [m("running", 0)]});
        assert_eq!(ClusterView::read("c", &down).health(), Health::Down);
        let stopped = json!({"leader": "a", "members": [m("running", 0), m("stopped", 0)]});
        assert_eq!(ClusterView::read("c", &stopped).health(), Health::Degraded);
        let lag = json!({"leader": "a", "members": [m("running", 0), m("streaming", LAG_WARN_BYTES + 1)]});
        let v = ClusterView::read("c", &lag);
        assert_eq!(v.health(), Health::Degraded);
        assert_eq!(v.worst_lag, Some(LAG_WARN_BYTES + 1));
    }

    #[test]
    fn wrong_types_read_as_absent() {
        let v = json!({"leader": 5, "members": "no", "timeline": "x", "paused": "yes"});
        let c = ClusterView::read("c", &v);
        assert_eq!(
            (c.leader, c.members.len(), c.timeline, c.paused),
            (None, 0, None, false)
        );
    }

    #[test]
    fn ages_and_bytes() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T01:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(age("2026-01-01T00:59:50Z", now), "10 s");
        assert_eq!(age("2026-01-01T00:00:00Z", now), "60 min");
        assert_eq!(age("garbage", now), "");
        assert_eq!(
            when("2026-01-01T02:00:00.123+01:00"),
            "2026-01-01 01:00:00 UTC"
        );
        assert_eq!(when("soon"), "soon");
        assert_eq!(bytes(5), "5 B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5 MB");
    }
}
