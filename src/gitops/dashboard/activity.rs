//! The cluster page's activity sections: declared operations (waiting and why, running,
//! done, author, outcome), restart-wave progress, drift events with policy and outcome, and
//! the live-vs-git comparison of the dynamic configuration. Pure rendering.

use super::diff::{compare, shown, text, KeyState};
use super::escape::html;
use super::model::{age, when};
use super::page::{td, th};
use serde_json::Value;
use std::fmt::Write;

fn table_head(s: &mut String, id: &str, cols: &[&str]) {
    let _ = write!(
        s,
        "<table id=\"{id}\" aria-labelledby=\"{id}-h\"><thead><tr>"
    );
    for c in cols {
        s.push_str(&th(c));
    }
    s.push_str("</tr></thead><tbody>\n");
}

fn str_of<'a>(v: Option<&'a Value>, k: &str) -> &'a str {
    v.and_then(|v| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Declared operations with their recorded state, or the note saying why they wait.
pub fn operations(s: &mut String, raw: &Value, now: chrono::DateTime<chrono::Utc>) {
    s.push_str("<h2 id=\"ops-h\">Operations</h2>\n");
    let declared: Vec<&Value> = raw
        .get("declared_ops")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let records = raw.get("operation_records").and_then(Value::as_object);
    let mut ids: Vec<(String, String)> = declared
        .iter()
        .map(|d| {
            (
                str_of(Some(d), "id").to_string(),
                str_of(Some(d), "type").to_string(),
            )
        })
        .collect();
    for id in records.into_iter().flat_map(|r| r.keys()) {
        if !ids.iter().any(|(i, _)| i == id) {
            ids.push((id.clone(), String::new()));
        }
    }
    if ids.is_empty() {
        s.push_str("<p class=\"muted\">No operation declared.</p>\n");
        return;
    }
    table_head(
        s,
        "ops",
        &[
            "Operation",
            "Type",
            "State",
            "Why / outcome",
            "Author",
            "When",
        ],
    );
    let notes = raw.get("op_notes");
    for (id, kind) in ids {
        let rec = records.and_then(|r| r.get(&id));
        let state = match rec {
            Some(r) => str_of(Some(r), "state").to_string(),
            None if notes.and_then(|n| n.get(&id)).is_some() => "waiting".into(),
            None => "declared".into(),
        };
        let why = match rec {
            Some(r) => str_of(Some(r), "outcome").to_string(),
            None => str_of(notes, &id).to_string(),
        };
        let at = str_of(rec, "at");
        let when = if at.is_empty() {
            String::new()
        } else {
            format!("{} ago", age(at, now))
        };
        let _ = write!(
            s,
            "<tr data-op=\"{}\"><th scope=\"row\">{}</th>",
            html(&id),
            html(&id)
        );
        for v in [kind.as_str(), &state, &why, str_of(rec, "author"), &when] {
            s.push_str(&td(v));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
}

/// Restart-wave progress: members still pending, and the reconciler's last note.
pub fn waves(s: &mut String, raw: &Value) {
    s.push_str("<h2 id=\"waves-h\">Restart waves</h2>\n<dl class=\"facts\">");
    let pending: Vec<&str> = raw
        .get("pending_restart_members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let total = raw
        .get("members")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let _ = write!(
        s,
        "<div><dt>Without pending restart</dt><dd><progress max=\"{total}\" value=\"{}\" aria-label=\"members without a pending restart\"></progress> {}/{total}</dd></div>",
        total.saturating_sub(pending.len()),
        total.saturating_sub(pending.len()),
    );
    let _ = write!(
        s,
        "<div><dt>Pending</dt><dd>{}</dd></div>",
        html(&if pending.is_empty() {
            "none".to_string()
        } else {
            pending.join(", ")
        })
    );
    let note = str_of(raw.get("op_notes"), "restart-waves");
    if !note.is_empty() {
        let _ = write!(s, "<div><dt>Reconciler</dt><dd>{}</dd></div>", html(note));
    }
    s.push_str("</dl>\n");
}

/// Drift events (newest first) with their policy and what was done.
pub fn drift(s: &mut String, raw: &Value) {
    s.push_str("<h2 id=\"drift-h\">Drift events</h2>\n");
    let log: Vec<&Value> = raw
        .get("drift_log")
        .and_then(Value::as_array)
        .map(|a| a.iter().rev().collect())
        .unwrap_or_default();
    if log.is_empty() {
        s.push_str("<p class=\"muted\">No drift seen since the reconciler started.</p>\n");
        return;
    }
    table_head(
        s,
        "drift",
        &["At", "Key", "Git", "Live", "Policy", "Outcome"],
    );
    for ev in log {
        let policy = str_of(Some(ev), "policy");
        let outcome = match policy {
            "revert" => "reverted to git's value".to_string(),
            "adopt" => match ev.get("branch").and_then(Value::as_str) {
                Some(b) => format!("live value proposed on branch {b}"),
                None => "adopt branch not created".into(),
            },
            _ => "alerted".into(),
        };
        let key = ev.get("key").map(text).unwrap_or_default();
        let val = |k: &str| ev.get(k).map(|v| shown(&key, v)).unwrap_or_default();
        let at = ev.get("at").map(text).unwrap_or_default();
        let _ = write!(s, "<tr data-drift-key=\"{}\">", html(&key));
        for v in [
            when(&at),
            key.clone(),
            val("git"),
            val("live"),
            policy.to_string(),
            outcome,
        ] {
            s.push_str(&td(&v));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
}

/// Every key git sets, with the live value and whether they agree.
pub fn config_diff(s: &mut String, raw: &Value) {
    s.push_str("<h2 id=\"config-h\">Live vs git: dynamic configuration</h2>\n");
    let git = raw.get("desired_config").filter(|v| !v.is_null());
    let live = raw.get("live_config").filter(|v| !v.is_null());
    if git.is_none() {
        s.push_str("<p class=\"muted\">The desired state sets no dynamic configuration.</p>\n");
        return;
    }
    let rows = compare(git, live);
    let differing = rows.iter().filter(|r| r.state != KeyState::Same).count();
    let _ = writeln!(
        s,
        "<p>Keys set in git: {}; not matching live: {differing}.</p>",
        rows.len()
    );
    table_head(s, "config", &["Key", "Git", "Live", "State"]);
    for r in rows {
        let (class, label) = match r.state {
            KeyState::Same => ("diff-same", "same"),
            KeyState::Differs => ("diff-differs", "differs"),
            KeyState::MissingLive => ("diff-missing", "missing live"),
        };
        let _ = write!(
            s,
            "<tr class=\"{class}\"><th scope=\"row\"><code>{}</code></th>",
            html(&r.key)
        );
        s.push_str(&td(&shown(&r.key, &r.git)));
        let live = r.live.as_ref().map(|v| shown(&r.key, v));
        s.push_str(&td(&live.unwrap_or_default()));
        s.push_str(&td(label));
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
}
