//! Plan output: text for terminals, JSON for machines, Markdown for pull-request comments.

use super::plan::{slot_summary, ClusterPlan, SlotChange};
use std::fmt::Write;

fn class_word(c: &super::guc::ChangeClass) -> &'static str {
    use super::guc::ChangeClass::*;
    match c {
        Reload => "reload",
        Restart => "restart",
        RestartReplicasFirst => "restart-ordered (replicas first)",
        RestartPrimaryFirst => "restart-ordered (primary first)",
        Unknown => "unknown",
    }
}

/// `logical postgres/test_decoding`, `physical -> logical db/p`, for a slot change.
fn slot_line(c: &SlotChange) -> String {
    match (&c.old, &c.new) {
        (Some(o), Some(n)) => format!("{} -> {}", slot_summary(o), slot_summary(n)),
        (Some(v), None) | (None, Some(v)) => slot_summary(v),
        (None, None) => String::new(),
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(unset)")
}

/// Human-readable plan.
pub fn text(plans: &[ClusterPlan]) -> String {
    let mut s = String::new();
    for p in plans {
        let _ = writeln!(
            s,
            "cluster {}: {}",
            p.scope,
            if p.changed { "changes" } else { "no changes" }
        );
        if !p.config_diff.is_empty() {
            let _ = writeln!(s, "\n  dynamic configuration:");
            for l in p.config_diff.lines() {
                let _ = writeln!(s, "    {l}");
            }
        }
        if !p.params.is_empty() {
            let _ = writeln!(s, "\n  parameters:");
            for c in &p.params {
                let _ = writeln!(
                    s,
                    "    {}: {} -> {}  [{}]",
                    c.name,
                    opt(&c.old),
                    opt(&c.new),
                    class_word(&c.class)
                );
            }
        }
        if !p.restart_waves.is_empty() {
            let waves: Vec<String> = p.restart_waves.iter().map(|w| w.join(", ")).collect();
            let _ = writeln!(
                s,
                "\n  restart waves (all members are affected): {}",
                waves.join(" -> ")
            );
        }
        if !p.tags.is_empty() {
            let _ = writeln!(s, "\n  member tags:");
            for t in &p.tags {
                let f = |v: &Option<serde_json::Value>| {
                    v.as_ref().map_or("(unset)".to_string(), |x| x.to_string())
                };
                let _ = writeln!(
                    s,
                    "    {}: {}: {} -> {}",
                    t.member,
                    t.tag,
                    f(&t.old),
                    f(&t.new)
                );
            }
        }
        if !p.slots.is_empty() {
            let _ = writeln!(s, "\n  replication slots:");
            for c in &p.slots {
                let _ = writeln!(s, "    {} {}: {}", c.verb(), c.name, slot_line(c));
            }
        }
        if !p.unmanaged.is_empty() {
            let _ = writeln!(
                s,
                "\n  unmanaged (live only, kept): {}",
                p.unmanaged.join(", ")
            );
        }
        if !p.ops_pending.is_empty() {
            let _ = writeln!(s, "\n  operations pending: {}", p.ops_pending.join(", "));
        }
        for w in &p.warnings {
            let _ = writeln!(s, "\n  warning: {w}");
        }
        let _ = writeln!(s);
    }
    s
}

/// JSON plan (also the saved-plan format for `apply --plan`).
pub fn json(plans: &[ClusterPlan]) -> String {
    // The target config carries the live unmanaged keys: no secret in plan output.
    serde_json::to_string_pretty(&crate::secrets::redact_json(
        &serde_json::json!({"format": "patronus-plan/1", "clusters": plans}),
    ))
    .unwrap_or_default()
}

/// Markdown for a pull-request comment.
pub fn markdown(plans: &[ClusterPlan]) -> String {
    let mut s = String::from("## patronus plan\n\n");
    for p in plans {
        let _ = writeln!(
            s,
            "### `{}` — {}\n",
            p.scope,
            if p.changed { "changes" } else { "no changes" }
        );
        if !p.params.is_empty() {
            s.push_str("| parameter | live | git | takes effect by |\n|---|---|---|---|\n");
            for c in &p.params {
                let _ = writeln!(
                    s,
                    "| `{}` | `{}` | `{}` | {} |",
                    c.name,
                    opt(&c.old),
                    opt(&c.new),
                    class_word(&c.class)
                );
            }
            s.push('\n');
        }
        if !p.restart_waves.is_empty() {
            let waves: Vec<String> = p
                .restart_waves
                .iter()
                .map(|w| format!("`{}`", w.join("`, `")))
                .collect();
            let _ = writeln!(s, "**Restart waves:** {}\n", waves.join(" → "));
        }
        if !p.tags.is_empty() {
            s.push_str("| member | tag | before | after |\n|---|---|---|---|\n");
            for t in &p.tags {
                let f = |v: &Option<serde_json::Value>| {
                    v.as_ref().map_or("—".to_string(), |x| format!("`{x}`"))
                };
                let _ = writeln!(
                    s,
                    "| `{}` | `{}` | {} | {} |",
                    t.member,
                    t.tag,
                    f(&t.old),
                    f(&t.new)
                );
            }
            s.push('\n');
        }
        if !p.slots.is_empty() {
            s.push_str("| replication slot | change | definition |\n|---|---|---|\n");
            for c in &p.slots {
                let _ = writeln!(s, "| `{}` | {} | {} |", c.name, c.verb(), slot_line(c));
            }
            s.push('\n');
        }
        if !p.config_diff.is_empty() {
            let _ = writeln!(s, "<details><summary>dynamic configuration diff</summary>\n\n```diff\n{}```\n</details>\n", p.config_diff);
        }
        if !p.unmanaged.is_empty() {
            let _ = writeln!(
                s,
                "Unmanaged live keys (kept): `{}`\n",
                p.unmanaged.join("`, `")
            );
        }
        if !p.ops_pending.is_empty() {
            let _ = writeln!(s, "Operations pending: {}\n", p.ops_pending.join(", "));
        }
        for w in &p.warnings {
            let _ = writeln!(s, "> ⚠️ {w}\n");
        }
    }
    s
}
