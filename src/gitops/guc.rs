//! Offline validation of PostgreSQL parameters (GUCs).
//!
//! The catalog is the output of `ci/gen-guc-catalog.sh` (a dump of `pg_settings`).
//! Values are checked the way the server parses them: booleans with their prefixes,
//! integers and reals with memory or time units converted to the parameter's base
//! unit and rounded, enums case-insensitively (including the aliases the server
//! accepts without listing them in `pg_settings.enumvals`).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// One parameter of the catalog.
#[derive(Debug, Clone, Deserialize)]
pub struct GucDef {
    /// Name as PostgreSQL spells it (e.g. `DateStyle`, `work_mem`).
    pub name: String,
    /// One of `bool`, `integer`, `real`, `string`, `enum`.
    pub vartype: String,
    /// Base unit of numeric values (`B`, `kB`, `8kB`, `MB`, `ms`, `s`, `min`).
    pub unit: Option<String>,
    /// Smallest allowed value, in base units, as `pg_settings` prints it.
    pub min: Option<String>,
    /// Largest allowed value, in base units, as `pg_settings` prints it.
    pub max: Option<String>,
    /// The values an enum parameter lists.
    pub enumvals: Option<Vec<String>>,
    /// When a change takes effect (`postmaster`, `sighup`, `user`, ...).
    pub context: String,
    /// The built-in default (`pg_settings.boot_val`).
    pub default: Option<String>,
}

/// How a change of a parameter takes effect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeClass {
    /// A configuration reload is enough.
    Reload,
    /// Every member must restart; the order does not matter.
    Restart,
    /// Restart the replicas before the primary (the value grows).
    RestartReplicasFirst,
    /// Restart the primary before the replicas (the value shrinks).
    RestartPrimaryFirst,
    /// Unknown parameter, or one that cannot be set.
    Unknown,
}

/// The file written by `ci/gen-guc-catalog.sh`.
#[derive(Deserialize)]
struct CatalogFile {
    #[cfg(test)]
    postgresql_major: u32,
    parameters: Vec<GucDef>,
}

/// The catalog of one PostgreSQL major.
#[derive(Debug, Clone)]
pub struct GucCatalog {
    /// The major it describes (checked by the tests against the bundled file).
    #[cfg(test)]
    major: u32,
    defs: Vec<GucDef>,
    /// Lower-cased name to index in `defs`.
    index: HashMap<String, usize>,
}

/// Parameters whose value on a replica must be at least the primary's.
const REPLICA_AT_LEAST_PRIMARY: [&str; 5] = [
    "max_connections",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "max_worker_processes",
    "max_wal_senders",
];

const MEMORY_UNITS: [(&str, f64); 5] = [
    ("B", 1.0),
    ("kB", 1024.0),
    ("MB", 1048576.0),
    ("GB", 1073741824.0),
    ("TB", 1099511627776.0),
];

/// Time units in microseconds.
const TIME_UNITS: [(&str, f64); 6] = [
    ("us", 1.0),
    ("ms", 1e3),
    ("s", 1e6),
    ("min", 6e7),
    ("h", 3.6e9),
    ("d", 8.64e10),
];

/// The base units a parameter can have: the unit table it belongs to and its size.
fn base_unit(unit: &str) -> Option<(&'static [(&'static str, f64)], f64)> {
    match unit {
        "8kB" => Some((&MEMORY_UNITS, 8192.0)),
        "us" | "ms" | "s" | "min" | "h" | "d" => {
            let size = TIME_UNITS.iter().find(|(u, _)| *u == unit)?.1;
            Some((&TIME_UNITS, size))
        }
        _ => {
            let size = MEMORY_UNITS.iter().find(|(u, _)| *u == unit)?.1;
            Some((&MEMORY_UNITS, size))
        }
    }
}

impl GucCatalog {
    /// Parses the JSON file format written by `ci/gen-guc-catalog.sh`.
    pub fn from_json(text: &str) -> Result<GucCatalog, String> {
        let file: CatalogFile =
            serde_json::from_str(text).map_err(|e| format!("invalid GUC catalog: {e}"))?;
        let mut index = HashMap::with_capacity(file.parameters.len());
        for (i, def) in file.parameters.iter().enumerate() {
            validate_def(def)?;
            if index.insert(def.name.to_lowercase(), i).is_some() {
                return Err(format!(
                    "invalid GUC catalog: \"{}\" appears twice",
                    def.name
                ));
            }
        }
        Ok(GucCatalog {
            #[cfg(test)]
            major: file.postgresql_major,
            defs: file.parameters,
            index,
        })
    }

    /// The catalog shipped for PostgreSQL 15 (parsed once).
    pub fn postgresql15() -> &'static GucCatalog {
        static CATALOG: OnceLock<GucCatalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            // The file is committed data and a test parses it; should it ever be
            // broken, every parameter reports as unknown instead of the process dying.
            GucCatalog::from_json(include_str!("../../schema/guc/postgresql-15.json"))
                .unwrap_or_else(|_| GucCatalog {
                    #[cfg(test)]
                    major: 15,
                    defs: Vec::new(),
                    index: HashMap::new(),
                })
        })
    }

    /// The PostgreSQL major version this catalog describes.
    #[cfg(test)]
    pub fn major(&self) -> u32 {
        self.major
    }

    /// Number of parameters in the catalog.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// Whether the catalog has no parameter at all.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Looks a parameter up by name, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&GucDef> {
        self.index
            .get(&name.to_lowercase())
            .and_then(|&i| self.defs.get(i))
    }

    /// Checks one value as a user would write it in YAML (string, number or boolean).
    /// `Err` holds the reason. Names with a dot (extension parameters) are not checked.
    pub fn check(&self, name: &str, value: &Value) -> Result<(), String> {
        match value {
            Value::Null => return Err(format!("parameter \"{name}\" has no value")),
            Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "parameter \"{name}\" takes a single value (string, number or boolean), not {}",
                    if value.is_array() {
                        "a list"
                    } else {
                        "a mapping"
                    }
                ))
            }
            _ => {}
        }
        if name.contains('.') {
            return Ok(());
        }
        let Some(def) = self.get(name) else {
            return Err(unknown_message(name, &self.suggest(name)));
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Bool(_) if def.vartype == "bool" => return Ok(()),
            // YAML 1.1 reads a bare `on`/`off` as a boolean; the server would get on/off.
            Value::Bool(b) if def.vartype == "enum" => if *b { "on" } else { "off" }.to_owned(),
            other => other.to_string(),
        };
        match def.vartype.as_str() {
            "bool" => parse_bool(&text).map(|_| ()).ok_or_else(|| {
                format!(
                    "invalid value for boolean parameter \"{}\": \"{text}\"",
                    def.name
                )
            }),
            "integer" => check_number(def, &text, true),
            "real" => check_number(def, &text, false),
            "enum" => check_enum(def, &text),
            _ => Ok(()),
        }
    }

    /// Closest known names for an unknown parameter (Levenshtein distance at most 3,
    /// or a known name starting with it), best first, at most 3.
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let wanted = name.to_lowercase();
        let mut scored: Vec<(usize, usize, &str)> = self
            .defs
            .iter()
            .filter_map(|def| {
                let known = def.name.to_lowercase();
                let distance = levenshtein(&wanted, &known);
                let score = if distance <= 3 {
                    distance
                } else if wanted.chars().count() >= 3 && known.starts_with(&wanted) {
                    4
                } else {
                    return None;
                };
                Some((score, def.name.len(), def.name.as_str()))
            })
            .filter(|(_, _, known)| !known.eq_ignore_ascii_case(name))
            .collect();
        scored.sort();
        scored
            .into_iter()
            .take(3)
            .map(|(_, _, n)| n.to_owned())
            .collect()
    }

    /// How a change of this parameter from `old` to `new` takes effect. `None` for
    /// `old` means the current value is unknown; for `new`, that the setting is
    /// removed (back to the built-in default).
    pub fn classify(&self, name: &str, old: Option<&str>, new: Option<&str>) -> ChangeClass {
        let Some(def) = self.get(name) else {
            return ChangeClass::Unknown;
        };
        match def.context.as_str() {
            "sighup" | "user" | "superuser" | "superuser-backend" | "backend" => {
                ChangeClass::Reload
            }
            "postmaster" if REPLICA_AT_LEAST_PRIMARY.contains(&def.name.as_str()) => {
                let number = |v: Option<&str>| v.and_then(|t| parse_in_base_units(def, t).ok());
                let new = new.or(def.default.as_deref());
                match (number(old), number(new)) {
                    (Some(o), Some(n)) if n < o => ChangeClass::RestartPrimaryFirst,
                    (Some(o), Some(n)) if n == o => ChangeClass::Restart,
                    _ => ChangeClass::RestartReplicasFirst,
                }
            }
            "postmaster" => ChangeClass::Restart,
            _ => ChangeClass::Unknown,
        }
    }
}

/// Rejects catalog entries the checker could not use.
fn validate_def(def: &GucDef) -> Result<(), String> {
    let bad = |what: &str| {
        Err(format!(
            "invalid GUC catalog: parameter \"{}\": {what}",
            def.name
        ))
    };
    match def.vartype.as_str() {
        "bool" | "string" => Ok(()),
        "enum" if def.enumvals.is_none() => bad("enum without enumvals"),
        "enum" => Ok(()),
        "integer" | "real" => {
            for bound in [&def.min, &def.max].into_iter().flatten() {
                if bound.trim().parse::<f64>().is_err() {
                    return bad(&format!("bound \"{bound}\" is not a number"));
                }
            }
            match def.unit.as_deref() {
                Some(unit) if base_unit(unit).is_none() => bad(&format!("unknown unit \"{unit}\"")),
                _ => Ok(()),
            }
        }
        other => bad(&format!("unknown vartype \"{other}\"")),
    }
}

fn unknown_message(name: &str, suggestions: &[String]) -> String {
    let quoted: Vec<String> = suggestions.iter().map(|s| format!("\"{s}\"")).collect();
    match quoted.split_last() {
        None => format!("unknown parameter \"{name}\""),
        Some((last, [])) => format!("unknown parameter \"{name}\" (did you mean {last}?)"),
        Some((last, rest)) => format!(
            "unknown parameter \"{name}\" (did you mean {} or {last}?)",
            rest.join(", ")
        ),
    }
}

/// PostgreSQL's boolean spellings: on/off/true/false/yes/no/1/0 and unambiguous
/// prefixes, case-insensitive, no surrounding blanks.
fn parse_bool(text: &str) -> Option<bool> {
    let t = text.to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    let prefix_of = |word: &str, min_len: usize| t.len() >= min_len && word.starts_with(&t);
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || t == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || t == "0" {
        Some(false)
    } else {
        None
    }
}

fn check_enum(def: &GucDef, text: &str) -> Result<(), String> {
    let listed = def.enumvals.as_deref().unwrap_or_default();
    if listed.iter().any(|v| v.eq_ignore_ascii_case(text))
        || hidden_enum_values(def)
            .iter()
            .any(|v| v.eq_ignore_ascii_case(text))
    {
        return Ok(());
    }
    Err(format!(
        "invalid value for parameter \"{}\": \"{text}\" (allowed: {})",
        def.name,
        listed.join(", ")
    ))
}

/// Values the server accepts for an enum without listing them in `pg_settings`.
fn hidden_enum_values(def: &GucDef) -> &'static [&'static str] {
    let listed = def.enumvals.as_deref().unwrap_or_default();
    let has = |v: &str| listed.iter().any(|l| l == v);
    match def.name.as_str() {
        "wal_level" => &["archive", "hot_standby"],
        "client_min_messages" | "trace_recovery_messages" => &["info"],
        _ if has("on") && has("off") => &["true", "false", "yes", "no", "1", "0"],
        _ => &[],
    }
}

/// Checks an integer or real value: syntax, unit, rounding and range.
fn check_number(def: &GucDef, text: &str, integer: bool) -> Result<(), String> {
    let mut value = parse_in_base_units(def, text)?;
    if integer {
        value = value.round_ties_even();
    }
    let min = def
        .min
        .as_deref()
        .and_then(|m| m.trim().parse::<f64>().ok());
    let max = def
        .max
        .as_deref()
        .and_then(|m| m.trim().parse::<f64>().ok());
    // pg_settings prints real bounds with 6 significant digits (1.79769e+308).
    let slack = |bound: f64| if integer { 0.0 } else { bound.abs() * 5e-6 };
    let below = min.is_some_and(|m| value < m - slack(m));
    let above = max.is_some_and(|m| value > m + slack(m));
    if !value.is_finite() || below || above {
        let shown = if integer && value.is_finite() {
            format!("{}", value as i64)
        } else {
            format!("{value}")
        };
        let unit = def
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        return Err(format!(
            "{shown}{unit} is outside the valid range for parameter \"{}\" ({} .. {})",
            def.name,
            def.min.as_deref().unwrap_or("?"),
            def.max.as_deref().unwrap_or("?")
        ));
    }
    Ok(())
}

/// Parses a number with an optional unit and converts it to the parameter's base
/// unit (not rounded).
fn parse_in_base_units(def: &GucDef, text: &str) -> Result<f64, String> {
    let invalid = || format!("invalid value for parameter \"{}\": \"{text}\"", def.name);
    let (number, rest) = split_number(text).ok_or_else(invalid)?;
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let unit = rest.trim();
    if unit.is_empty() {
        return Ok(value);
    }
    let Some((table, base_size)) = def.unit.as_deref().and_then(base_unit) else {
        return Err(invalid());
    };
    match table.iter().find(|(u, _)| *u == unit) {
        Some((_, size)) => Ok(value * size / base_size),
        None => {
            let names: Vec<&str> = table.iter().map(|(u, _)| *u).collect();
            Err(format!("{} (valid units: {})", invalid(), names.join(", ")))
        }
    }
}

/// Splits leading blanks plus a decimal number (sign, digits, fraction, exponent)
/// from the rest of `text`. `None` when no number starts the text.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let s = text.trim_start();
    let bytes = s.as_bytes();
    let digits_from = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let int_end = digits_from(end);
    let mut seen_digit = int_end > end;
    end = int_end;
    if bytes.get(end) == Some(&b'.') {
        let frac_end = digits_from(end + 1);
        seen_digit |= frac_end > end + 1;
        end = frac_end;
    }
    if !seen_digit {
        return None;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exp_end = digits_from(end + 1 + sign);
        if exp_end > end + 1 + sign {
            end = exp_end;
        }
    }
    Some(s.split_at(end))
}

/// Edit distance between two names (insertions, deletions, substitutions).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
