//! Pure rendering of one log record the way Patroni's `logging` setup does: a Python
//! `%(name)s` format string for plain lines, or a JSON object whose keys are the fields the
//! format names (python-json-logger's behaviour, so `asctime`, `levelname`, `message`).

use chrono::{DateTime, Local};

/// Patroni's default format.
pub const DEFAULT_FORMAT: &str = "%(asctime)s %(levelname)s: %(message)s";

/// One record: what a Python `LogRecord` would offer under the names the format uses.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Time of the event.
    pub time: DateTime<Local>,
    /// Python level name (`DEBUG`, `INFO`, `WARNING`, `ERROR`).
    pub level: &'static str,
    /// The message, with any structured fields appended as `key=value`.
    pub message: &'a str,
    /// Module path of the event (Python's `name`).
    pub target: &'a str,
}

/// `asctime` as Python renders it: `dateformat` through strftime, or `YYYY-mm-dd HH:MM:SS,mmm`.
pub fn asctime(time: &DateTime<Local>, dateformat: Option<&str>) -> String {
    match dateformat {
        Some(f) => {
            use std::fmt::Write;
            let mut out = String::new();
            // An invalid strftime item makes chrono's Display fail: fall back to the default.
            match write!(out, "{}", time.format(f)) {
                Ok(()) => out,
                Err(_) => asctime(time, None),
            }
        }
        None => time.format("%Y-%m-%d %H:%M:%S,%3f").to_string(),
    }
}

/// The value of one `%(key)` field, None for a key patronus does not know.
fn field(key: &str, r: &Record<'_>, dateformat: Option<&str>) -> Option<String> {
    Some(match key {
        "asctime" => asctime(&r.time, dateformat),
        "levelname" => r.level.to_string(),
        "message" => r.message.to_string(),
        "name" | "module" => r.target.to_string(),
        "process" => std::process::id().to_string(),
        "threadName" => "MainThread".to_string(),
        _ => return None,
    })
}

/// Splits a format into literal text and `%(key)X` fields (X = s, d, …; `%%` is a `%`).
fn parse(format: &str) -> Vec<Result<String, String>> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = format;
    while let Some(i) = rest.find('%') {
        lit.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('%') {
            lit.push('%');
            rest = stripped;
        } else if let Some((key, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            let conv = tail
                .find(|c: char| c.is_ascii_alphabetic())
                .map_or(0, |p| p + 1);
            parts.push(Ok(std::mem::take(&mut lit)));
            parts.push(Err(key.to_string()));
            rest = &tail[conv..];
        } else {
            lit.push('%');
            rest = after;
        }
    }
    lit.push_str(rest);
    parts.push(Ok(lit));
    parts
}

/// A plain line (no trailing newline). Unknown fields render empty, as a missing attribute
/// would fail in Python: the line is kept rather than lost.
pub fn plain(format: &str, dateformat: Option<&str>, r: &Record<'_>) -> String {
    parse(format)
        .into_iter()
        .map(|p| match p {
            Ok(lit) => lit,
            Err(key) => field(&key, r, dateformat).unwrap_or_default(),
        })
        .collect()
}

/// A JSON object with one key per field the format names (Patroni's json type).
pub fn json(format: &str, dateformat: Option<&str>, r: &Record<'_>) -> String {
    let mut obj = serde_json::Map::new();
    for key in parse(format).into_iter().filter_map(Result::err) {
        if let Some(v) = field(&key, r, dateformat) {
            obj.insert(key, v.into());
        }
    }
    serde_json::Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec(message: &str) -> Record<'_> {
        Record {
            time: Local.with_ymd_and_hms(2026, 1, 31, 12, 5, 9).unwrap(),
            level: "INFO",
            message,
            target: "patronus::agent",
        }
    }

    #[test]
    fn default_format_is_patronis_line() {
        let line = plain(
            DEFAULT_FORMAT,
            None,
            &rec("no action. I am (m1), the leader"),
        );
        assert_eq!(
            line,
            "2026-01-31 12:05:09,000 INFO: no action. I am (m1), the leader"
        );
    }

    #[test]
    fn dateformat_and_percent_escape() {
        let line = plain(
            "[%(levelname)-8s] %(asctime)s 100%% %(message)s",
            Some("%H:%M"),
            &rec("x"),
        );
        assert_eq!(line, "[INFO] 12:05 100% x");
    }

    #[test]
    fn json_uses_the_fields_of_the_format() {
        let v: serde_json::Value =
            serde_json::from_str(&json(DEFAULT_FORMAT, None, &rec("hello"))).unwrap();
        assert_eq!(v["levelname"], "INFO");
        assert_eq!(v["message"], "hello");
        assert_eq!(v["asctime"], "2026-01-31 12:05:09,000");
        assert_eq!(v.as_object().unwrap().len(), 3);
    }

    #[test]
    fn unknown_field_and_broken_format_do_not_panic() {
        assert_eq!(plain("%(nope)s|%(message", None, &rec("m")), "|%(message");
        assert_eq!(plain("%(message)s", Some("%Q"), &rec("m")), "m");
    }
}
