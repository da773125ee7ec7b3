//! The fleet page: one row per cluster (leader, members up/total, worst lag, timeline,
//! pending restarts, drift, last applied commit, sync mode, pause) with a health colour;
//! sortable and filterable by the bundled script. Pure rendering of the status document.

use super::escape::{html, path_segment};
use super::model::{age, bytes, clusters, ClusterView};
use super::page::{td, td_key, th_sort};
use serde_json::Value;
use std::fmt::Write;

/// The filter box above the fleet table (kept out of the refreshed `<main>`).
pub const FILTER: &str = "<p class=\"filter\"><label for=\"filter\">Filter clusters </label>\
<input id=\"filter\" type=\"search\" aria-controls=\"fleet\" placeholder=\"name, leader, author…\"></p>";

/// The content of `<main>` for the fleet page.
pub fn fleet_main(doc: &Value, now: chrono::DateTime<chrono::Utc>) -> String {
    let rows = clusters(doc);
    let mut s = String::with_capacity(512 + rows.len() * 900);
    let _ = writeln!(
        s,
        "<h1>Fleet <span class=\"muted\">({} cluster{})</span></h1>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    s.push_str(&header_facts(doc, now));
    s.push_str(
        "<table id=\"fleet\"><caption class=\"muted\">Clusters managed by this reconciler; \
select a column header to sort.</caption>\n<thead><tr>",
    );
    for (label, kind) in [
        ("Cluster", "text"),
        ("Health", "text"),
        ("Leader", "text"),
        ("Members up", "num"),
        ("Worst lag", "num"),
        ("TL", "num"),
        ("Pending restarts", "num"),
        ("Drift", "num"),
        ("Last applied", "text"),
        ("Sync mode", "text"),
        ("Paused", "text"),
    ] {
        s.push_str(&th_sort(label, kind));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for c in &rows {
        row(&mut s, c, now);
    }
    s.push_str("</tbody></table>\n");
    if rows.is_empty() {
        s.push_str("<p>No cluster yet: the reconciler has not read a valid desired commit.</p>\n");
    }
    s
}

/// The reconciler's own state: last pass, desired commit, last error.
fn header_facts(doc: &Value, now: chrono::DateTime<chrono::Utc>) -> String {
    let str_at = |p: &str| doc.pointer(p).and_then(Value::as_str).unwrap_or("");
    let mut s = String::from("<dl class=\"facts\">");
    let _ = write!(
        s,
        "<div><dt>Desired commit</dt><dd><code>{}</code> {} — {}</dd></div>",
        html(short(str_at("/desired_commit/sha"))),
        html(str_at("/desired_commit/summary")),
        html(str_at("/desired_commit/author")),
    );
    let _ = write!(
        s,
        "<div><dt>Last pass</dt><dd>{} ago</dd></div>",
        html(&age(str_at("/last_pass"), now))
    );
    if let Some(e) = doc.get("last_error").and_then(Value::as_str) {
        let _ = write!(
            s,
            "<div><dt>Last error</dt><dd class=\"down\">{}</dd></div>",
            html(e)
        );
    }
    s.push_str("</dl>\n");
    s
}

/// The first 12 characters of a sha.
pub fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn row(s: &mut String, c: &ClusterView<'_>, now: chrono::DateTime<chrono::Utc>) {
    let health = c.health();
    let _ = write!(
        s,
        "<tr class=\"row-{h}\" data-cluster=\"{n}\"><th scope=\"row\"><a href=\"/clusters/{p}\">{n}</a></th>\
<td data-key=\"{rank}\"><span class=\"badge {h}\">{h}</span></td>",
        h = health.label(),
        n = html(c.scope),
        p = path_segment(c.scope),
        rank = health as u8,
    );
    s.push_str(&td(c.leader.unwrap_or("none")));
    let _ = write!(
        s,
        "<td class=\"num\" data-key=\"{}\">{}/{}</td>",
        c.up,
        c.up,
        c.members.len()
    );
    let lag = c.worst_lag.map(bytes).unwrap_or_else(|| "–".into());
    let _ = write!(
        s,
        "<td class=\"num\" data-key=\"{}\">{}</td>",
        c.worst_lag.unwrap_or(0),
        html(&lag)
    );
    let tl = c.timeline.map(|t| t.to_string()).unwrap_or_default();
    s.push_str(&td_key(&tl, &tl));
    s.push_str(&td_key(
        &c.pending_restarts.to_string(),
        &c.pending_restarts.to_string(),
    ));
    let drift = if c.drifted_now > 0 {
        format!("{} ({} keys now)", c.drift, c.drifted_now)
    } else {
        c.drift.to_string()
    };
    s.push_str(&td_key(&drift, &c.drift.to_string()));
    match c.applied() {
        Some((sha, author, at)) => {
            let _ = write!(
                s,
                "<td data-key=\"{at}\"><code>{sha}</code> {author}, {age} ago</td>",
                at = html(at),
                sha = html(short(sha)),
                author = html(author),
                age = html(&age(at, now)),
            );
        }
        None => s.push_str("<td>never</td>"),
    }
    s.push_str(&td(c.sync_mode));
    s.push_str(&td(if c.paused { "paused" } else { "no" }));
    s.push_str("</tr>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_row_per_cluster_escaped() {
        let doc = json!({"clusters": {
            "<b>evil</b>": {"leader": "a\"b", "members": [{"name": "a\"b", "state": "running"}],
                "applied": {"commit": "0123456789abcdef", "author": "Eve <eve@x>", "applied_at": "2026-01-01T00:00:00Z"}},
            "calm": {"members": []}}});
        let now = chrono::Utc::now();
        let html = fleet_main(&doc, now);
        assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<b>evil"));
        assert!(html.contains("href=\"/clusters/%3Cb%3Eevil%3C%2Fb%3E\""));
        assert!(html.contains("a&quot;b"));
        assert!(html.contains("Eve &lt;eve@x&gt;"));
        assert!(html.contains("<code>0123456789ab</code>"));
        assert_eq!(html.matches("<tr class=\"row-").count(), 2);
        assert!(html.contains("badge down"));
    }
}
