//! patronictl 4.x output of `list`, `topology` and `history`, rendered from
//! the `GET /cluster` JSON and the DCS `history` array (docs/patroni-behaviour.md §4, §4.1).
//!
//! Every function returns the complete text patronictl would print, each line
//! (including the last) terminated by `\n`.

mod pyfmt;
mod table;
#[cfg(test)]
mod tests;
mod topology;
mod yaml11;

use std::collections::HashSet;

use serde_json::{json, Map, Value};
use table::Align;

/// Output format of `list` / `history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A box-drawn table (`-f pretty`, the default).
    Pretty,
    /// Tab-separated values with a header line (`-f tsv`).
    Tsv,
    /// A JSON array of objects keyed by column title, as Python's `json.dumps`.
    Json,
    /// The same array as YAML, as PyYAML's `safe_dump` (keys sorted).
    Yaml,
}

/// Options of the list table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Always show `Pending restart`, `Pending restart reason`, `Scheduled
    /// restart` and `Tags` (`-e`); otherwise each shows only when some member
    /// has a value for it.
    pub extended: bool,
    /// Printed as the first line when given (`-t`), e.g. `2024-01-02 03:04:05`.
    pub timestamp: Option<String>,
    /// Rows as the replication tree (`patronictl topology`): leader first, then
    /// its replicas as `+ name`, cascading replicas (tag `replicatefrom`)
    /// indented two more spaces per level.
    pub topology: bool,
}

/// Columns always present, with their machine-format titles.
const BASE_COLUMNS: [&str; 10] = [
    "Cluster",
    "Member",
    "Host",
    "Role",
    "State",
    "TL",
    "Receive LSN",
    "Receive Lag",
    "Replay LSN",
    "Replay Lag",
];

/// Optional columns and the member field deciding whether they show.
const OPTIONAL_COLUMNS: [(&str, &str); 4] = [
    ("Pending restart", "pending_restart"),
    ("Pending restart reason", "pending_restart_reason"),
    ("Scheduled restart", "scheduled_restart"),
    ("Tags", "tags"),
];

/// An empty cell.
fn blank() -> Value {
    Value::String(String::new())
}

/// Python truthiness of an optional JSON value.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Python's `str()` of a cell value.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => pyfmt::json_dumps(other),
    }
}

/// A member field as a cell: missing or `null` → empty.
fn field(m: &Map<String, Value>, key: &str) -> Value {
    match m.get(key) {
        None | Some(Value::Null) => blank(),
        Some(v) => v.clone(),
    }
}

/// `leader` → `Leader`, `sync_standby` → `Sync Standby` (Python `str.title`).
fn title_role(role: &str) -> String {
    let mut out = String::new();
    let mut prev_cased = false;
    for c in role.replace('_', " ").chars() {
        if prev_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_cased = c.is_alphabetic();
    }
    out
}

/// A lag cell: bytes → MB rounded half-to-even (Python `round`), `unknown` →
/// empty, anything else unchanged.
fn lag_mb(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => {
            let mb = n.as_f64().unwrap_or(0.0) / 1024.0 / 1024.0;
            json!(mb.round_ties_even() as i64)
        }
        Value::String(s) if s == "unknown" => blank(),
        other => other,
    }
}

/// `param: old->new` lines; with `hide_long`, lines over 50 characters become
/// `param: [hidden - too long]`.
fn restart_reason(m: &Map<String, Value>, hide_long: bool) -> String {
    let Some(Value::Object(reasons)) = m.get("pending_restart_reason") else {
        return String::new();
    };
    let side = |v: &Value, k: &str| v.get(k).map(text).unwrap_or_default();
    let lines: Vec<String> = reasons
        .iter()
        .map(|(k, v)| {
            let full = format!("{k}: {}->{}", side(v, "old_value"), side(v, "new_value"));
            if hide_long && full.chars().count() > 50 {
                format!("{k}: [hidden - too long]")
            } else {
                full
            }
        })
        .collect();
    lines.join("\n")
}

/// The `Scheduled restart` cell: `schedule`, plus ` if version < V` when a
/// `postgres_version` condition is set.
fn scheduled_restart(m: &Map<String, Value>) -> Value {
    match m.get("scheduled_restart") {
        Some(Value::Object(s)) => {
            let mut v = s.get("schedule").map(text).unwrap_or_default();
            if let Some(pv) = s.get("postgres_version") {
                v.push_str(&format!(" if version < {}", text(pv)));
            }
            Value::String(v)
        }
        _ => field(m, "scheduled_restart"),
    }
}

/// Builds one row keyed by machine column title.
fn member_row(
    m: &Map<String, Value>,
    scope: &str,
    shown_name: String,
    append_port: bool,
    hide_long: bool,
) -> Map<String, Value> {
    let (mut receive_lsn, mut replay_lsn) = (field(m, "receive_lsn"), field(m, "replay_lsn"));
    let (mut receive_lag, mut replay_lag) = (field(m, "receive_lag"), field(m, "replay_lag"));
    // Members publishing only the old `lsn`/`lag` pair.
    let lsn = field(m, "lsn");
    if receive_lsn == "unknown" && replay_lsn == "unknown" && truthy(Some(&lsn)) && lsn != "unknown"
    {
        if m.get("state").and_then(Value::as_str) == Some("streaming") {
            (receive_lag, receive_lsn) = (field(m, "lag"), lsn);
        } else {
            (replay_lag, replay_lsn) = (field(m, "lag"), lsn);
        }
    }
    let mut host = field(m, "host");
    if append_port && truthy(Some(&host)) && truthy(m.get("port")) {
        host = Value::String(format!(
            "{}:{}",
            text(&host),
            m.get("port").map(text).unwrap_or_default()
        ));
    }
    let role = m.get("role").and_then(Value::as_str).unwrap_or("");
    let tags = match m.get("tags") {
        Some(Value::Object(t)) if !t.is_empty() => Value::Object(t.clone()),
        _ => blank(),
    };
    let pending = if truthy(m.get("pending_restart")) {
        "*"
    } else {
        ""
    };
    let cells = [
        json!(scope),
        json!(shown_name),
        host,
        json!(title_role(role)),
        field(m, "state"),
        field(m, "timeline"),
        receive_lsn,
        lag_mb(receive_lag),
        replay_lsn,
        lag_mb(replay_lag),
        json!(pending),
        json!(restart_reason(m, hide_long)),
        scheduled_restart(m),
        tags,
    ];
    let titles = BASE_COLUMNS
        .iter()
        .chain(OPTIONAL_COLUMNS.iter().map(|(t, _)| t));
    titles.map(|t| t.to_string()).zip(cells).collect()
}

/// patronictl's footer lines: maintenance mode and a scheduled switchover; then ours: members
/// that cannot lead because they cannot fence a primary.
fn service_info(cluster: &Value) -> Vec<String> {
    let mut info = Vec::new();
    if truthy(cluster.get("pause")) {
        info.push("Maintenance mode: on".to_string());
    }
    if let Some(s) = cluster.get("scheduled_switchover").filter(|s| !s.is_null()) {
        let mut line = format!(
            "Switchover scheduled at: {}",
            s.get("at").map(text).unwrap_or_default()
        );
        for key in ["from", "to"] {
            if let Some(v) = s.get(key) {
                line.push_str(&format!("\n{key:>24}: {}", text(v)));
            }
        }
        info.push(line);
    }
    let members = cluster.get("members").and_then(Value::as_array);
    for m in members.into_iter().flatten() {
        if let Some(why) = m.get("fence_problem").filter(|v| !v.is_null()) {
            let name = m.get("name").map(text).unwrap_or_default();
            info.push(format!("Not a leader candidate: {name}: {}", text(why)));
        }
    }
    info
}

/// Renders `patronictl list` (or `topology`, with `opts.topology`) for one
/// cluster. `cluster` is the GET /cluster JSON, `sysid` the `initialize` key
/// (None → "uninitialized", Some("") → "initializing").
pub fn render_list(
    scope: &str,
    sysid: Option<&str>,
    cluster: &serde_json::Value,
    fmt: &Format,
    opts: &ListOptions,
) -> String {
    let members: Vec<&Map<String, Value>> = cluster
        .get("members")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let columns = list_columns(&members, opts);
    let rows = list_rows(&members, scope, opts, *fmt == Format::Pretty);
    let mut out = opts
        .timestamp
        .as_ref()
        .map(|t| format!("{t}\n"))
        .unwrap_or_default();
    match fmt {
        Format::Json | Format::Yaml => {
            out.push_str(&machine(&machine_elements(&rows, &columns), *fmt));
        }
        Format::Tsv => out.push_str(&tsv(&rows, &columns)),
        Format::Pretty => {
            let init = match sysid {
                None => "uninitialized",
                Some("") => "initializing",
                Some(s) => s,
            };
            let title = format!(" Cluster: {scope} ({init}) ");
            out.push_str(&pretty_table(&title, &rows, &columns, opts.topology));
            let info = service_info(cluster);
            if !info.is_empty() {
                out.push_str(&format!(" {}\n", info.join("\n ")));
            }
        }
    }
    out
}

/// The base columns, plus each optional one some member (with a host) has a value for, or
/// all of them with `-e`.
fn list_columns(members: &[&Map<String, Value>], opts: &ListOptions) -> Vec<&'static str> {
    let mut columns: Vec<&'static str> = BASE_COLUMNS.to_vec();
    for (title, key) in OPTIONAL_COLUMNS {
        let shown = members
            .iter()
            .filter(|m| m.contains_key("host"))
            .any(|m| truthy(m.get(key)));
        if opts.extended || shown {
            columns.push(title);
        }
    }
    columns
}

/// One row per member, in list or topology order (cascaded names indented as patronictl).
fn list_rows(
    members: &[&Map<String, Value>],
    scope: &str,
    opts: &ListOptions,
    pretty: bool,
) -> Vec<Map<String, Value>> {
    let with_host: Vec<&&Map<String, Value>> =
        members.iter().filter(|m| m.contains_key("host")).collect();
    let hosts: HashSet<String> = with_host
        .iter()
        .filter_map(|m| m.get("host"))
        .map(text)
        .collect();
    // patronictl shows `host:port` when hosts repeat or a port is not the default.
    let append_port = hosts.len() < with_host.len()
        || with_host
            .iter()
            .any(|m| m.get("port").is_some_and(|p| p.as_u64() != Some(5432)));
    let order: Vec<(usize, usize)> = if opts.topology {
        topology::order(members)
    } else {
        (0..members.len()).map(|i| (i, 0)).collect()
    };
    order
        .into_iter()
        .filter_map(|(i, level)| Some((*members.get(i)?, level)))
        .map(|(m, level)| {
            let name = m.get("name").map(text).unwrap_or_default();
            let shown = match level {
                0 => name,
                l => format!("{}+ {name}", "  ".repeat(l - 1)),
            };
            member_row(m, scope, shown, append_port, pretty)
        })
        .collect()
}

/// A cell's text: tags as YAML (flow style when `flow`), anything else as printed.
fn cell_text(column: &str, v: &Value, flow: bool) -> String {
    match v {
        Value::Object(_) if column == "Tags" => pyfmt::yaml_dump(v, flow).trim().to_string(),
        other => text(other),
    }
}

/// The JSON/YAML elements: each row's non-empty cells keyed by column title.
fn machine_elements(rows: &[Map<String, Value>], columns: &[&str]) -> Value {
    let elements = rows.iter().map(|r| {
        Value::Object(
            columns
                .iter()
                .filter_map(|c| Some((c.to_string(), r.get(*c)?)))
                .filter(|(_, v)| !text(v).is_empty())
                .map(|(c, v)| (c, v.clone()))
                .collect(),
        )
    });
    Value::Array(elements.collect())
}

/// `-f tsv`: a header line, then one tab-separated line per row.
fn tsv(rows: &[Map<String, Value>], columns: &[&str]) -> String {
    let mut out = columns.join("\t");
    out.push('\n');
    for r in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| r.get(*c).map(|v| cell_text(c, v, true)).unwrap_or_default())
            .collect();
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

/// The box table (`-f pretty`); the `Cluster` column is the title instead.
fn pretty_table(
    title: &str,
    rows: &[Map<String, Value>],
    columns: &[&str],
    topology: bool,
) -> String {
    let shown = &columns[1..];
    let heads: Vec<(String, Align)> = shown
        .iter()
        .map(|c| {
            let title = if c.ends_with(" Lag") { "Lag" } else { c };
            let right = matches!(title, "TL" | "Receive LSN" | "Replay LSN" | "Lag");
            let align = if right { Align::Right } else { Align::Left };
            (title.to_string(), align)
        })
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            shown
                .iter()
                .map(|c| {
                    r.get(*c)
                        .map(|v| cell_text(c, v, topology))
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    table::render(Some(title), &heads, &cells)
}

/// The JSON or YAML text of a machine-format result, as `click.echo` prints it.
fn machine(elements: &Value, fmt: Format) -> String {
    match fmt {
        Format::Json => format!("{}\n", pyfmt::json_dumps(elements)),
        _ => format!("{}\n", pyfmt::yaml_dump(elements, false)),
    }
}

/// Renders `patronictl history`: rows [tl, lsn(int), reason, timestamp?,
/// new_leader?] with columns TL, LSN, Reason, Timestamp, New Leader. Short
/// rows are padded with empty cells (kept in JSON/YAML, as patronictl does).
/// The scope is not part of patronictl's history output.
pub fn render_history(_scope: &str, history: &serde_json::Value, fmt: &Format) -> String {
    const COLUMNS: [&str; 5] = ["TL", "LSN", "Reason", "Timestamp", "New Leader"];
    let rows: Vec<Vec<Value>> = history
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|line| {
                    let mut cells = match line {
                        Value::Array(c) => c.clone(),
                        other => vec![other.clone()],
                    };
                    cells.resize(COLUMNS.len(), blank());
                    cells
                })
                .collect()
        })
        .unwrap_or_default();
    let texts = || {
        rows.iter()
            .map(|r| r.iter().map(text).collect::<Vec<String>>())
    };
    match fmt {
        Format::Json | Format::Yaml => {
            let elements = rows
                .iter()
                .map(|r| {
                    Value::Object(
                        COLUMNS
                            .iter()
                            .map(|c| c.to_string())
                            .zip(r.iter().cloned())
                            .collect(),
                    )
                })
                .collect();
            machine(&Value::Array(elements), *fmt)
        }
        Format::Tsv => {
            let lines = std::iter::once(COLUMNS.map(String::from).to_vec()).chain(texts());
            lines.map(|l| format!("{}\n", l.join("\t"))).collect()
        }
        Format::Pretty => {
            let heads: Vec<(String, Align)> = COLUMNS
                .iter()
                .map(|c| {
                    (
                        c.to_string(),
                        if matches!(*c, "TL" | "LSN") {
                            Align::Right
                        } else {
                            Align::Left
                        },
                    )
                })
                .collect();
            table::render(None, &heads, &texts().collect::<Vec<_>>())
        }
    }
}
