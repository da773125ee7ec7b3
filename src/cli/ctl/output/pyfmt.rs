//! The two Python serialisations patronictl prints with: `json.dumps` with its
//! defaults (`", "`/`": "` separators, `ensure_ascii`) and PyYAML's
//! `safe_dump(default_flow_style=…, allow_unicode=True)` (sorted keys, YAML 1.1
//! quoting rules). Long-line folding (PyYAML `width=200`) is not reproduced.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// `json.dumps(v)` with Python's default options.
pub(super) fn json_dumps(v: &Value) -> String {
    let mut out = String::new();
    json_into(v, &mut out);
    out
}

fn json_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_into(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_string(k, out);
                out.push_str(": ");
                json_into(x, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string with everything outside printable ASCII escaped.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// `yaml.safe_dump(v, default_flow_style=flow, allow_unicode=True)`; the
/// result ends with a newline.
pub(super) fn yaml_dump(v: &Value, flow: bool) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() && !flow => block_map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() && !flow => block_seq(a, 0, &mut out),
        _ => {
            flow_node(v, &mut out);
            out.push('\n');
        }
    }
    out
}

/// Entries sorted by key, as PyYAML's `sort_keys=True` does.
fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// A block mapping whose first key goes where the cursor already is.
fn block_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    for (i, (k, v)) in sorted(m).into_iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&scalar(k, false, true, indent + 2));
        out.push(':');
        match v {
            Value::Object(c) if !c.is_empty() => {
                out.push('\n');
                out.push_str(&" ".repeat(indent + 2));
                block_map(c, indent + 2, out);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                block_seq(a, indent, out);
            }
            _ => {
                out.push(' ');
                block_scalar_line(v, indent, out);
            }
        }
    }
}

/// A block sequence whose first `-` goes where the cursor already is.
fn block_seq(a: &[Value], indent: usize, out: &mut String) {
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match v {
            Value::Object(c) if !c.is_empty() => block_map(c, indent + 2, out),
            Value::Array(c) if !c.is_empty() => block_seq(c, indent + 2, out),
            _ => block_scalar_line(v, indent, out),
        }
    }
}

/// A scalar (or empty collection) in block context, then a newline.
fn block_scalar_line(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(&scalar(s, false, false, indent + 2)),
        _ => flow_node(v, out),
    }
    out.push('\n');
}

/// A node in flow style (`{a: 1, b: [x]}`).
fn flow_node(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&scalar(s, true, false, 2)),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow_node(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in sorted(m).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&scalar(k, true, true, 2));
                out.push_str(": ");
                flow_node(x, out);
            }
            out.push('}');
        }
    }
}

/// Characters after which PyYAML considers the text "followed by whitespace".
fn is_ws(c: Option<char>) -> bool {
    matches!(
        c,
        None | Some(' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
    )
}

/// Which styles PyYAML's scalar analysis allows: (plain in flow, plain in
/// block, single-quoted).
fn analyze(s: &str) -> (bool, bool, bool) {
    if s.is_empty() {
        return (false, false, true);
    }
    let chars: Vec<char> = s.chars().collect();
    let (mut flow_ind, mut block_ind) = (s.starts_with("---") || s.starts_with("..."), false);
    block_ind |= flow_ind;
    let (mut breaks, mut special, mut space_break, mut break_space) = (false, false, false, false);
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        let followed = is_ws(chars.get(i + 1).copied());
        let preceded = i == 0 || is_ws(chars.get(i.wrapping_sub(1)).copied());
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) || (c == '-' && followed) {
                flow_ind = true;
                block_ind = true;
            } else if c == '?' || c == ':' {
                flow_ind = true;
                block_ind |= followed;
            }
        } else if ",?[]{}".contains(c) {
            flow_ind = true;
        } else if c == ':' {
            flow_ind = true;
            block_ind |= followed;
        } else if c == '#' && preceded {
            flow_ind = true;
            block_ind = true;
        }
        let is_break = matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}');
        breaks |= is_break;
        let printable = matches!(c, '\n' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
            && c != '\u{feff}';
        special |= !printable;
        let prev = (i > 0).then(|| chars[i - 1]);
        if c == ' ' && prev.is_some_and(|p| matches!(p, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'))
        {
            break_space = true;
        }
        if is_break && prev == Some(' ') {
            space_break = true;
        }
    }
    let edge_ws = |c: char| c == ' ' || matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let edges = edge_ws(chars[0]) || edge_ws(chars[last]);
    if space_break || special {
        return (false, false, false);
    }
    let plain_ok = !edges && !breaks && !break_space;
    (plain_ok && !flow_ind, plain_ok && !block_ind, !break_space)
}

/// A string scalar as PyYAML writes it: plain when that reads back as the same
/// string, otherwise single-quoted (multi-line: breaks doubled, continuation
/// lines indented by `indent`), otherwise double-quoted.
fn scalar(s: &str, flow: bool, key: bool, indent: usize) -> String {
    let (flow_plain, block_plain, single) = analyze(s);
    let multiline = s.contains(['\n', '\u{85}', '\u{2028}', '\u{2029}']);
    let plain = if flow { flow_plain } else { block_plain };
    if plain && !(key && multiline) && !super::yaml11::resolves_to_non_string(s) {
        return s.to_string();
    }
    if single && !(key && multiline) {
        // A run of k line breaks is written as k + 1 breaks, then the indent.
        let mut out = String::from("'");
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => out.push_str("''"),
                '\n' => {
                    out.push_str("\n\n");
                    while chars.next_if_eq(&'\n').is_some() {
                        out.push('\n');
                    }
                    out.push_str(&" ".repeat(indent));
                }
                _ => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{feff}' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_like_python() {
        let v = json!([{"a": 1, "b": "é\n\"x\"", "c": {"d": [true, null]}}]);
        let want = r#"[{"a": 1, "b": "\u00e9\n\"x\"", "c": {"d": [true, null]}}]"#;
        assert_eq!(json_dumps(&v), want);
        assert_eq!(json_dumps(&json!("😀")), r#""\ud83d\ude00""#);
    }

    #[test]
    fn yaml_block_and_flow() {
        let v = json!([{"b": "x", "a": {"z": 1, "y": [1, "two"]}, "c": {}, "d": ""}]);
        let want = "- a:\n    y:\n    - 1\n    - two\n    z: 1\n  b: x\n  c: {}\n  d: ''\n";
        assert_eq!(yaml_dump(&v, false), want);
        let tags = json!({"nofailover": true, "replicatefrom": "pg-a", "host": "1.2.3.4:5"});
        assert_eq!(
            yaml_dump(&tags, true),
            "{host: '1.2.3.4:5', nofailover: true, replicatefrom: pg-a}\n"
        );
        assert_eq!(
            yaml_dump(&tags, false),
            "host: 1.2.3.4:5\nnofailover: true\nreplicatefrom: pg-a\n"
        );
        assert_eq!(yaml_dump(&json!([]), false), "[]\n");
    }

    #[test]
    fn yaml_quoting() {
        let q = |s: &str| scalar(s, false, false, 2);
        for plain in [
            "streaming",
            "0/504E298",
            "127.0.0.1:5432",
            "a b",
            "1.2.3",
            "x-y",
            "-x",
            "é",
        ] {
            assert_eq!(q(plain), plain);
        }
        let quoted = [
            ("", "''"),
            ("*", "'*'"),
            ("yes", "'yes'"),
            ("Off", "'Off'"),
            ("null", "'null'"),
            ("~", "'~'"),
            ("12", "'12'"),
            ("0x1F", "'0x1F'"),
            ("1:30", "'1:30'"),
            ("1.5", "'1.5'"),
            (".inf", "'.inf'"),
            (
                "2023-09-11T22:11:27.125527+00:00",
                "'2023-09-11T22:11:27.125527+00:00'",
            ),
            ("2024-01-02", "'2024-01-02'"),
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            (" a", "' a'"),
            ("it's", "it's"),
            ("'x'", "'''x'''"),
            ("a\nb", "'a\n\n  b'"),
            ("a\n\nb", "'a\n\n\n  b'"),
            ("a\tb", "\"a\\tb\""),
        ];
        for (s, want) in quoted {
            assert_eq!(q(s), want, "{s:?}");
        }
    }
}
