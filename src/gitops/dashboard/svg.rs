//! Inline SVG pictures (no script, no external resource): the replication topology, the
//! timeline history and the replica-lag plot. Every text is escaped; each picture has a
//! `<title>` and `role="img"` with a label, and the same facts are in a table nearby.

use super::escape::html;
use super::model::{bytes, member_up};
use serde_json::Value;
use std::fmt::Write;

const BOX_W: i64 = 150;
const BOX_H: i64 = 34;
const COL_GAP: i64 = 60;
const ROW_GAP: i64 = 12;

/// Who each member replicates from: the `replicatefrom` tag when it names a member, else the
/// leader. The leader has no upstream.
fn upstream<'a>(m: &'a Value, leader: Option<&'a str>, names: &[&str]) -> Option<&'a str> {
    let name = m.get("name").and_then(Value::as_str)?;
    if Some(name) == leader {
        return None;
    }
    let tag = m.pointer("/tags/replicatefrom").and_then(Value::as_str);
    match tag {
        Some(t) if t != name && names.contains(&t) => Some(t),
        _ => leader,
    }
}

/// Depth of each member in the replication tree (leader 0; cycles and orphans land at 1).
fn depth(i: usize, ups: &[Option<usize>]) -> usize {
    let (mut d, mut at) = (0, i);
    while let Some(u) = ups[at] {
        d += 1;
        at = u;
        if d > ups.len() {
            return 1;
        }
    }
    d
}

/// The topology: leader on the left, replicas to the right, cascades one column further;
/// a standby cluster shows its upstream as a first box.
pub fn topology(members: &[&Value], leader: Option<&str>, standby: Option<&Value>) -> String {
    let names: Vec<&str> = members
        .iter()
        .filter_map(|m| m.get("name").and_then(Value::as_str))
        .collect();
    let idx = |n: &str| names.iter().position(|x| *x == n);
    let ups: Vec<Option<usize>> = members
        .iter()
        .map(|m| upstream(m, leader, &names).and_then(idx))
        .collect();
    let offset = i64::from(standby.is_some());
    let mut cols: Vec<Vec<usize>> = vec![];
    for i in 0..members.len() {
        let d = depth(i, &ups);
        if cols.len() <= d {
            cols.resize(d + 1, vec![]);
        }
        cols[d].push(i);
    }
    let rows = cols.iter().map(Vec::len).max().unwrap_or(1).max(1) as i64;
    let (w, h) = (
        (cols.len() as i64 + offset).max(1) * (BOX_W + COL_GAP),
        rows * (BOX_H + ROW_GAP) + ROW_GAP,
    );
    let mut pos = vec![(0i64, 0i64); members.len()];
    for (c, col) in cols.iter().enumerate() {
        for (r, &i) in col.iter().enumerate() {
            pos[i] = (
                (c as i64 + offset) * (BOX_W + COL_GAP) + 4,
                ROW_GAP + r as i64 * (BOX_H + ROW_GAP),
            );
        }
    }
    let mut s = format!(
        "<svg role=\"img\" aria-labelledby=\"topo-t\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">\
<title id=\"topo-t\">Replication topology: {}</title>",
        html(&describe(&names, &ups))
    );
    for (i, up) in ups.iter().enumerate() {
        if let Some(u) = up {
            edge(&mut s, pos[*u], pos[i]);
        }
    }
    if let Some(sc) = standby {
        let host = sc.get("host").map(super::diff::text).unwrap_or_default();
        let port = sc.get("port").map(super::diff::text).unwrap_or_default();
        node(
            &mut s,
            (4, ROW_GAP),
            &format!("upstream {host}:{port}"),
            "node",
        );
        if let Some(l) = leader.and_then(idx) {
            edge(&mut s, (4, ROW_GAP), pos[l]);
        }
    }
    for (i, m) in members.iter().enumerate() {
        let class = if Some(names[i]) == leader {
            "node leader"
        } else if !member_up(m) {
            "node down"
        } else {
            "node"
        };
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        node(&mut s, pos[i], &format!("{} ({role})", names[i]), class);
    }
    s.push_str("</svg>");
    s
}

fn describe(names: &[&str], ups: &[Option<usize>]) -> String {
    names
        .iter()
        .zip(ups)
        .map(|(n, u)| match u {
            Some(u) => format!("{n} replicates from {}", names[*u]),
            None => format!("{n} leads"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn node(s: &mut String, (x, y): (i64, i64), label: &str, class: &str) {
    let _ = write!(
        s,
        "<g><rect class=\"{class}\" x=\"{x}\" y=\"{y}\" rx=\"6\" width=\"{BOX_W}\" height=\"{BOX_H}\"/>\
<text x=\"{}\" y=\"{}\">{}</text></g>",
        x + 8,
        y + 21,
        html(label)
    );
}

fn edge(s: &mut String, from: (i64, i64), to: (i64, i64)) {
    let (x1, y1) = (from.0 + BOX_W, from.1 + BOX_H / 2);
    let (x2, y2) = (to.0, to.1 + BOX_H / 2);
    let _ = write!(
        s,
        "<path class=\"edge\" d=\"M{x1} {y1} C{} {y1} {} {y2} {x2} {y2}\"/>",
        x1 + COL_GAP / 2,
        x2 - COL_GAP / 2
    );
}

/// The timeline history as a line with one mark per switch (timeline ended → new one).
pub fn timeline(history: &[Value], current: Option<u64>) -> String {
    let n = history.len() as i64;
    let w = 120 + n.max(1) * 140;
    let mut s = format!(
        "<svg role=\"img\" aria-labelledby=\"tl-t\" viewBox=\"0 0 {w} 60\" width=\"{w}\" height=\"60\">\
<title id=\"tl-t\">Timeline history: {} switches, current timeline {}</title>\
<line class=\"axis\" x1=\"10\" y1=\"30\" x2=\"{}\" y2=\"30\" stroke-width=\"2\"/>",
        n,
        current.map(|t| t.to_string()).unwrap_or_else(|| "unknown".into()),
        w - 10
    );
    for (i, h) in history.iter().enumerate() {
        let x = 70 + i as i64 * 140;
        let tl = h.get("timeline").and_then(Value::as_u64).unwrap_or(0);
        let who = h.get("new_leader").and_then(Value::as_str).unwrap_or("?");
        let _ = write!(
            s,
            "<circle class=\"tick\" cx=\"{x}\" cy=\"30\" r=\"5\"/><text x=\"{}\" y=\"18\">TL {tl} → {}</text>\
<text x=\"{}\" y=\"50\">{}</text>",
            x - 30,
            tl + 1,
            x - 30,
            html(who)
        );
    }
    s.push_str("</svg>");
    s
}

/// One series of the lag plot: member name and (unix seconds, lag bytes) samples.
pub type Series = (String, Vec<(i64, u64)>);

/// Replica lag over the last `span` seconds up to `now`, one polyline per member.
pub fn lag_plot(series: &[Series], now: i64, span: i64) -> String {
    let (w, h, left, bottom) = (640i64, 180i64, 70i64, 20i64);
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut s = format!(
        "<svg role=\"img\" aria-labelledby=\"lag-t\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">\
<title id=\"lag-t\">Replica lag over the last {} minutes, peak {}</title>\
<line class=\"axis\" x1=\"{left}\" y1=\"{y0}\" x2=\"{w}\" y2=\"{y0}\"/>\
<line class=\"axis\" x1=\"{left}\" y1=\"4\" x2=\"{left}\" y2=\"{y0}\"/>\
<text x=\"2\" y=\"14\">{}</text><text x=\"2\" y=\"{y0}\">0</text>\
<text x=\"{left}\" y=\"{h}\">-{} min</text><text x=\"{}\" y=\"{h}\">now</text>",
        span / 60,
        html(&bytes(max)),
        html(&bytes(max)),
        span / 60,
        w - 30,
        y0 = h - bottom,
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = i % 5;
        let path: Vec<String> = pts
            .iter()
            .map(|(t, v)| {
                let x = left + (span - (now - t)).clamp(0, span) * (w - left) / span.max(1);
                let y = (h - bottom) - (*v as i64) * (h - bottom - 4) / max as i64;
                format!("{x},{y}")
            })
            .collect();
        let _ = write!(
            s,
            "<polyline class=\"series s{colour}\" points=\"{}\"><title>{}</title></polyline>\
<text class=\"series-label s{colour}\" x=\"{}\" y=\"{}\">{}</text>",
            path.join(" "),
            html(name),
            left + 8 + i as i64 * 110,
            14,
            html(name)
        );
        // A lone sample draws no line: mark it.
        if let [only] = path.as_slice() {
            let (x, y) = only.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                s,
                "<circle class=\"series s{colour}\" cx=\"{x}\" cy=\"{y}\" r=\"3\"/>"
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cascades_and_escaping() {
        let a = json!({"name": "a", "role": "leader", "state": "running"});
        let b = json!({"name": "b<x>", "role": "replica", "state": "streaming"});
        let c = json!({"name": "c", "role": "replica", "state": "streaming", "tags": {"replicatefrom": "b<x>"}});
        let svg = topology(&[&a, &b, &c], Some("a"), None);
        assert!(svg.contains("c replicates from b&lt;x&gt;"), "{svg}");
        assert!(svg.contains("b&lt;x&gt; replicates from a"));
        assert!(!svg.contains("b<x>"));
        assert_eq!(svg.matches("class=\"edge\"").count(), 2);
    }

    #[test]
    fn cycles_do_not_hang() {
        let a = json!({"name": "a", "tags": {"replicatefrom": "b"}});
        let b = json!({"name": "b", "tags": {"replicatefrom": "a"}});
        let svg = topology(&[&a, &b], None, None);
        assert!(svg.contains("a replicates from b"));
    }

    #[test]
    fn plots_points_in_range() {
        let svg = lag_plot(
            &[("b".into(), vec![(0, 0), (1800, 100), (3600, 50)])],
            3600,
            3600,
        );
        assert!(svg.contains("points=\"70,160 355,4 640,82\""), "{svg}");
    }
}
