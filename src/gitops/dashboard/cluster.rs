//! The cluster page: facts, the members table as `patronus list` shows it, the topology,
//! the lag plot and the timeline history; operations, restart waves, drift and the
//! live-vs-git config follow ([`super::activity`]). Pure rendering of the status document.

use super::escape::html;
use super::fleet::short;
use super::model::{age, bytes, ClusterView};
use super::page::{td, td_key, th, th_sort};
use super::svg::{lag_plot, timeline, topology, Series};
use serde_json::Value;
use std::fmt::Write;

/// The content of `<main>` for cluster `scope`; None when the reconciler does not know it.
pub fn cluster_main(
    doc: &Value,
    scope: &str,
    lags: &[Series],
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let raw = doc.get("clusters")?.get(scope)?;
    let c = ClusterView::read(scope, raw);
    let mut s = String::with_capacity(16 * 1024);
    let h = c.health();
    let _ = writeln!(
        s,
        "<h1>Cluster {} <span class=\"badge {h}\">{h}</span></h1>",
        html(scope),
        h = h.label()
    );
    facts(&mut s, &c, now);
    s.push_str("<h2 id=\"members-h\">Members</h2>\n");
    members(&mut s, &c);
    s.push_str("<div class=\"grid2\"><section aria-labelledby=\"topo-h\"><h2 id=\"topo-h\">Topology</h2>\n");
    s.push_str(&topology(
        &c.members,
        c.leader,
        raw.get("standby_cluster").filter(|v| v.is_object()),
    ));
    s.push_str("</section>\n<section aria-labelledby=\"lag-h\"><h2 id=\"lag-h\">Replica lag, last hour</h2>\n");
    if lags.iter().all(|(_, p)| p.is_empty()) {
        s.push_str("<p class=\"muted\">No lag sample yet.</p>");
    } else {
        s.push_str(&lag_plot(lags, now.timestamp(), super::samples::SPAN_SECS));
    }
    s.push_str("</section></div>\n");
    history(&mut s, raw, c.timeline);
    super::activity::operations(&mut s, raw, now);
    super::activity::waves(&mut s, raw);
    super::activity::drift(&mut s, raw);
    super::activity::config_diff(&mut s, raw);
    Some(s)
}

fn facts(s: &mut String, c: &ClusterView<'_>, now: chrono::DateTime<chrono::Utc>) {
    s.push_str("<dl class=\"facts\">");
    let mut fact = |k: &str, v: &str| {
        let _ = write!(
            s,
            "<div><dt>{}</dt><dd data-fact=\"{}\">{}</dd></div>",
            html(k),
            html(k),
            html(v)
        );
    };
    fact("Leader", c.leader.unwrap_or("none"));
    fact("Members up", &format!("{}/{}", c.up, c.members.len()));
    fact(
        "Timeline",
        &c.timeline.map(|t| t.to_string()).unwrap_or_default(),
    );
    fact("Sync mode", c.sync_mode);
    fact("Paused", if c.paused { "yes" } else { "no" });
    if let Some((sha, author, at)) = c.applied() {
        fact(
            "Last applied",
            &format!("{} by {author}, {} ago", short(sha), age(at, now)),
        );
    }
    s.push_str("</dl>\n");
}

/// The members table: the columns of `patronus list` (lags in bytes and MB).
fn members(s: &mut String, c: &ClusterView<'_>) {
    s.push_str("<table id=\"members\" aria-labelledby=\"members-h\"><thead><tr>");
    s.push_str(&th_sort("Member", "text"));
    s.push_str(&th("Host"));
    s.push_str(&th_sort("Role", "text"));
    s.push_str(&th_sort("State", "text"));
    s.push_str(&th_sort("TL", "num"));
    s.push_str(&th_sort("Receive lag", "num"));
    s.push_str(&th_sort("Replay lag", "num"));
    s.push_str(&th("Pending restart"));
    s.push_str(&th("Tags"));
    s.push_str("</tr></thead><tbody>\n");
    for m in &c.members {
        let f = |k: &str| m.get(k).map(super::diff::text).unwrap_or_default();
        let name = f("name");
        let role = f("role");
        let _ = write!(
            s,
            "<tr data-member=\"{n}\" data-role=\"{r}\"><th scope=\"row\">{n}</th>",
            n = html(&name),
            r = html(&role)
        );
        let host = match (m.get("host"), m.get("port")) {
            (Some(h), Some(p)) => format!("{}:{}", super::diff::text(h), p),
            (Some(h), None) => super::diff::text(h),
            _ => String::new(),
        };
        s.push_str(&td(&host));
        s.push_str(&td(&role));
        s.push_str(&td(&f("state")));
        s.push_str(&td_key(&f("timeline"), &f("timeline")));
        for k in ["receive_lag", "replay_lag"] {
            let v = m.get(k).or_else(|| m.get("lag"));
            let (txt, key) = match v.and_then(Value::as_u64) {
                Some(b) => (bytes(b), b.to_string()),
                None => (String::new(), "0".into()),
            };
            s.push_str(&td_key(&txt, &key));
        }
        let pending = if m.get("pending_restart") == Some(&Value::Bool(true)) {
            let why = m
                .get("pending_restart_reason")
                .and_then(Value::as_object)
                .map(|r| r.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            format!("yes {why}")
        } else {
            String::new()
        };
        s.push_str(&td(pending.trim()));
        let tags = m
            .get("tags")
            .and_then(Value::as_object)
            .map(|t| {
                t.iter()
                    .map(|(k, v)| format!("{k}: {}", super::diff::text(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        s.push_str(&td(&tags));
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
}

/// The timeline history: a picture and the same facts as a table.
fn history(s: &mut String, raw: &Value, current: Option<u64>) {
    let h: Vec<Value> = raw
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    s.push_str("<h2 id=\"history-h\">Timeline history</h2>\n");
    s.push_str(&timeline(&h, current));
    if h.is_empty() {
        s.push_str("<p class=\"muted\">No switch recorded: still on the first timeline.</p>\n");
        return;
    }
    s.push_str("<table id=\"history\" aria-labelledby=\"history-h\"><thead><tr>");
    for t in ["Timeline", "LSN", "Reason", "At", "New leader"] {
        s.push_str(&th(t));
    }
    s.push_str("</tr></thead><tbody>\n");
    for line in h.iter().rev() {
        s.push_str("<tr>");
        for k in ["timeline", "lsn", "reason", "at", "new_leader"] {
            let v = line.get(k).filter(|v| !v.is_null());
            let v = v.map(super::diff::text).unwrap_or_default();
            s.push_str(&td(&if k == "at" { super::model::when(&v) } else { v }));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_every_section_and_escapes() {
        let doc = json!({"clusters": {"acme": {
            "leader": "a",
            "members": [{"name": "a", "role": "leader", "state": "running", "timeline": 2},
                        {"name": "b<i>", "role": "replica", "state": "streaming", "lag": 2048, "timeline": 2,
                         "pending_restart": true, "pending_restart_reason": {"max_connections": {}}}],
            "history": [{"timeline": 1, "lsn": 100, "reason": "no recovery target specified", "new_leader": "a"}],
            "timeline": 2,
            "drift_log": [{"event": "drift", "key": "postgresql.parameters.work_mem", "git": "8MB", "live": "<64MB>", "policy": "alert"}],
            "desired_config": {"postgresql": {"parameters": {"work_mem": "8MB"}}},
            "live_config": {"postgresql": {"parameters": {"work_mem": "<64MB>"}}},
        }}});
        let html = cluster_main(&doc, "acme", &[], chrono::Utc::now()).unwrap();
        for needle in [
            "Members",
            "Topology",
            "Timeline history",
            "Operations",
            "Restart waves",
            "Drift events",
            "Live vs git",
            "b&lt;i&gt;",
            "&lt;64MB&gt;",
            "2 kB",
        ] {
            assert!(html.contains(needle), "{needle} missing:\n{html}");
        }
        assert!(!html.contains("<i>") && !html.contains("<64MB>"));
        assert!(cluster_main(&doc, "nosuch", &[], chrono::Utc::now()).is_none());
    }
}
