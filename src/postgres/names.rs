//! Names and quoting: replication slot names, postgresql.conf values, libpq
//! conninfo values and SQL identifiers/literals.

/// Maximum length of a PostgreSQL identifier (NAMEDATALEN - 1), in bytes.
const MAX_IDENT_BYTES: usize = 63;

/// Derives the physical replication slot name for a cluster member, following
/// Patroni's rule.
///
/// The name is lower-cased; `-` and `.` become `_`; any other character
/// outside `[a-z0-9_]` becomes `u` followed by
/// its code point in decimal, zero-padded to four digits (Patroni's rule); the result is truncated to 63 bytes.
///
/// `"pg-1.a"` → `"pg_1_a"`, `"Node1"` → `"node1"`, `"é"` → `"u0233"`.
pub fn slot_name_for_member(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.to_lowercase().chars() {
        match c {
            'a'..='z' | '0'..='9' | '_' => out.push(c),
            '-' | '.' => out.push('_'),
            other => out.push_str(&format!("u{:04}", u32::from(other))),
        }
    }
    // Every pushed character is ASCII, so any byte index is a char boundary.
    out.truncate(MAX_IDENT_BYTES);
    out
}

/// Quotes a value for postgresql.conf: wrapped in single quotes, `'` doubled
/// and `\` doubled.
///
/// Line breaks are written as the escapes `\n` / `\r` (which PostgreSQL's
/// configuration parser decodes back), because a quoted value may not span
/// lines.
pub fn quote_conf_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

/// Quotes a libpq conninfo keyword value.
///
/// The value is written bare when it is non-empty and contains no
/// whitespace, `'` or `\`; otherwise it is wrapped in single quotes with `\`
/// and `'` escaped by a backslash.
pub fn quote_libpq_value(v: &str) -> String {
    let needs_quotes = v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
    if !needs_quotes {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Quotes an SQL identifier: wrapped in double quotes, `"` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal: wrapped in single quotes with `'` doubled.
///
/// When the value contains a backslash the escape-string form `E'...'` is
/// used with backslashes doubled, so the result means the same regardless of
/// `standard_conforming_strings`.
pub fn quote_literal(v: &str) -> String {
    let body = v.replace('\'', "''");
    if v.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// True when `name` is a syntactically valid configuration parameter name:
/// a letter or `_` followed by letters, digits, `_`, `$` or `.` (the dot for
/// extension parameters such as `pg_stat_statements.track`).
///
/// Names that fail this check cannot be written to postgresql.conf safely.
pub fn is_valid_guc_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names() {
        assert_eq!(slot_name_for_member("pg-1.a"), "pg_1_a");
        assert_eq!(slot_name_for_member("Node1"), "node1");
        assert_eq!(slot_name_for_member("é"), "u0233");
        assert_eq!(slot_name_for_member("É"), "u0233");
        assert_eq!(slot_name_for_member("a b"), "au0032b");
        assert_eq!(slot_name_for_member("x@y"), "xu0064y");
        assert_eq!(slot_name_for_member("snow☃"), "snowu9731");
        assert_eq!(slot_name_for_member("😀"), "u128512");
        assert_eq!(slot_name_for_member("already_ok_09"), "already_ok_09");
        assert_eq!(slot_name_for_member(""), "");
    }

    #[test]
    fn slot_name_truncated_to_63_bytes() {
        let long = "A".repeat(100);
        let slot = slot_name_for_member(&long);
        assert_eq!(slot.len(), 63);
        assert_eq!(slot, "a".repeat(63));
        // Truncation may cut through an encoded character, but never panics.
        let encoded = "é".repeat(20);
        let slot = slot_name_for_member(&encoded);
        assert_eq!(slot.len(), 63);
        assert!(slot.starts_with("u0233u0233"));
    }

    #[test]
    fn conf_value_quoting() {
        assert_eq!(quote_conf_value(""), "''");
        assert_eq!(quote_conf_value("on"), "'on'");
        assert_eq!(quote_conf_value("it's"), "'it''s'");
        assert_eq!(quote_conf_value(r"C:\data"), r"'C:\\data'");
        assert_eq!(quote_conf_value("a b"), "'a b'");
        assert_eq!(quote_conf_value("a\nb\r"), r"'a\nb\r'");
        assert_eq!(quote_conf_value(r"\'"), r"'\\'''");
    }

    #[test]
    fn libpq_value_quoting() {
        assert_eq!(quote_libpq_value("replicator"), "replicator");
        assert_eq!(quote_libpq_value("a=b"), "a=b");
        assert_eq!(quote_libpq_value(""), "''");
        assert_eq!(quote_libpq_value("a b"), "'a b'");
        assert_eq!(quote_libpq_value("tab\there"), "'tab\there'");
        assert_eq!(quote_libpq_value("it's"), r"'it\'s'");
        assert_eq!(quote_libpq_value(r"C:\x"), r"'C:\\x'");
    }

    #[test]
    fn sql_quoting() {
        assert_eq!(quote_ident("postgres"), "\"postgres\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_literal("abc"), "'abc'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(""), "''");
        assert_eq!(quote_literal(r"a\b"), r"E'a\\b'");
        assert_eq!(quote_literal(r"a\'b"), r"E'a\\''b'");
    }

    #[test]
    fn guc_names() {
        for ok in ["shared_buffers", "pg_stat_statements.track", "_x", "A1$"] {
            assert!(is_valid_guc_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "a b", "a=b", "a\nb", "é", "x'"] {
            assert!(!is_valid_guc_name(bad), "{bad:?}");
        }
    }
}
