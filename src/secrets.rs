//! The one rule deciding what is a secret, and the redaction applied at every exit of a
//! node (DCS, logs, webhooks, `GET /status`, `observed.yaml`, history, plan output).
//!
//! A setting is secret when its **name** says so (`password`, `passwd`, `passphrase`,
//! `secret`, `token`, `credential` — except the few PostgreSQL settings whose value is a
//! choice, not a secret, such as `password_encryption`) or when its **value** carries one:
//! a conninfo `password=` (also `PGPASSWORD=`, `sslpassword=`, `--password=`), or a URI with
//! a password in its user info (`postgresql://user:pw@host`). Pure code, no I/O.

use serde_json::{Map, Value};

/// What replaces a secret.
pub const REDACTED: &str = "***";

/// Name fragments that make a setting secret (compared lowercase).
const SECRET_NAME_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
];

/// Settings whose name contains a secret fragment but whose value is not a secret.
const NOT_SECRET_NAMES: &[&str] = &[
    "password_encryption",
    "ssl_passphrase_command_supports_reload",
];

/// Keywords whose `=` or `:` value is a secret in free text (compared lowercase).
const SECRET_VALUE_KEYS: &[&str] = &["password", "passwd", "passphrase", "secret", "token"];

/// Whether the setting `name` holds a secret whatever its value.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !NOT_SECRET_NAMES.contains(&n.as_str()) && SECRET_NAME_PARTS.iter().any(|p| n.contains(p))
}

/// Whether the text carries a secret (`password=…`, `PGPASSWORD=…`, `scheme://u:pw@host`).
pub fn carries_secret(text: &str) -> bool {
    redact(text) != text
}

/// Whether the setting `name = value` must never leave the node.
pub fn is_secret_setting(name: &str, value: &str) -> bool {
    is_secret_name(name) || carries_secret(value)
}

/// Whether a JSON value (of a setting) carries a secret anywhere.
fn value_carries_secret(v: &Value) -> bool {
    match v {
        Value::String(s) => carries_secret(s),
        Value::Array(a) => a.iter().any(value_carries_secret),
        Value::Object(o) => o.iter().any(|(k, v)| is_secret_entry(k, v)),
        _ => false,
    }
}

/// Whether the entry `key: v` of a JSON document is or holds a secret (a secret name with a
/// null or empty value holds nothing).
fn is_secret_entry(key: &str, v: &Value) -> bool {
    let empty = v.is_null() || v.as_str().is_some_and(str::is_empty);
    (is_secret_name(key) && !empty) || value_carries_secret(v)
}

/// The dotted paths of a JSON document that are or carry secrets (e.g.
/// `postgresql.parameters.primary_conninfo`), in document order.
pub fn secret_paths(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_paths("", doc, &mut out);
    out
}

fn collect_paths(prefix: &str, v: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let empty = child.is_null() || child.as_str().is_some_and(str::is_empty);
                if is_secret_name(k) && !empty && !child.is_object() {
                    out.push(join(k));
                } else {
                    collect_paths(&join(k), child, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                collect_paths(&join(&i.to_string()), child, out);
            }
        }
        Value::String(s) if carries_secret(s) => out.push(prefix.to_string()),
        _ => {}
    }
}

/// Drops the secret settings of a `name → value` map (what a node may publish).
pub fn strip_secret_settings(settings: Map<String, Value>) -> Map<String, Value> {
    settings
        .into_iter()
        .filter(|(k, v)| !is_secret_entry(k, v))
        .collect()
}

/// A copy of a JSON document with every secret replaced by [`REDACTED`]: values under a
/// secret name, and the secret parts of strings (see [`redact`]).
pub fn redact_json(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, child)| {
                    let empty = child.is_null() || child.as_str().is_some_and(str::is_empty);
                    let red = if is_secret_name(k) && !empty && !child.is_object() {
                        Value::String(REDACTED.into())
                    } else {
                        redact_json(child)
                    };
                    (k.clone(), red)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact_json).collect()),
        Value::String(s) => Value::String(redact(s)),
        other => other.clone(),
    }
}

/// The value of setting `name` as it may be shown: [`REDACTED`] for a secret name, else the
/// value with its secret parts redacted.
pub fn redact_setting(name: &str, value: &str) -> String {
    if is_secret_name(name) && !value.is_empty() {
        REDACTED.to_string()
    } else {
        redact(value)
    }
}

/// Redacts free text: the value after a secret keyword followed by `=` or `:` (conninfo
/// `password=…` quoted or not, `PGPASSWORD=…`, `"password": "…"`), and the password of a URI's
/// user info (`postgresql://user:pw@host` → `postgresql://user:***@host`).
pub fn redact(text: &str) -> String {
    redact_uris(&redact_keywords(text))
}

/// Byte offset just past a secret keyword's separator (`=` or `:`, with optional closing
/// quote and spaces around it) when a keyword starts at `i`.
fn keyword_value_start(lower: &[u8], i: usize) -> Option<usize> {
    let kw = SECRET_VALUE_KEYS
        .iter()
        .find(|k| lower[i..].starts_with(k.as_bytes()))?;
    let mut j = i + kw.len();
    if j < lower.len() && (lower[j] == b'"' || lower[j] == b'\'') {
        j += 1;
    }
    while j < lower.len() && lower[j] == b' ' {
        j += 1;
    }
    if j < lower.len() && (lower[j] == b'=' || lower[j] == b':') {
        j += 1;
        while j < lower.len() && lower[j] == b' ' {
            j += 1;
        }
        Some(j)
    } else {
        None
    }
}

/// End (exclusive) of a value starting at `start`: a quoted value up to its closing quote
/// (backslash escapes honoured; the end of text when unclosed), else up to whitespace, a
/// quote, `&`, `,`, `;`, `}` or `)`.
fn value_end(b: &[u8], start: usize) -> usize {
    if start < b.len() && (b[start] == b'\'' || b[start] == b'"') {
        let q = b[start];
        let mut j = start + 1;
        while j < b.len() {
            if b[j] == b'\\' {
                j += 2;
                continue;
            }
            if b[j] == q {
                return j + 1;
            }
            j += 1;
        }
        return b.len();
    }
    let mut j = start;
    while j < b.len() && !b" \t\r\n'\"&,;})".contains(&b[j]) {
        j += 1;
    }
    j
}

fn redact_keywords(text: &str) -> String {
    let lower = text.to_ascii_lowercase().into_bytes();
    let bytes = text.as_bytes();
    // Every keyword is looked at, even inside another one's value ("token=password = 'x'"),
    // and the overlapping ranges are merged.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for i in 0..bytes.len() {
        if !text.is_char_boundary(i) {
            continue;
        }
        if let Some(start) = keyword_value_start(&lower, i) {
            let end = value_end(bytes, start).min(bytes.len());
            if end <= start {
                continue;
            }
            match ranges.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => ranges.push((start, end)),
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in ranges {
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Redacts `scheme://user:password@` user infos.
fn redact_uris(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let auth_end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..auth_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at && colon + 1 < at => {
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[auth_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
