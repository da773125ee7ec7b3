//! YAML parsing into a JSON tree, shared by the node loader and env overrides.

use serde_json::{Map, Value};

pub use patronus_core::config::yaml::kind;

/// Parses a YAML document into a JSON tree (merge keys applied, tags dropped,
/// scalar keys turned into strings).
pub fn parse_yaml_str(yaml: &str) -> Result<Value, String> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    value.apply_merge().map_err(|e| e.to_string())?;
    yaml_to_json(value)
}

fn yaml_to_json(v: serde_yaml::Value) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(n.to_string()))
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_keys_scalar_keys_and_tags() {
        let v = parse_yaml_str(
            "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n1: one\ntrue: yes\nt: !custom 5\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["derived"], json!({"x": 1, "y": 2}));
        assert_eq!(v["1"], "one");
        assert_eq!(v["true"], "yes");
        assert_eq!(v["t"], 5);
    }

    #[test]
    fn empty_document_is_null_and_errors_have_reason() {
        assert_eq!(parse_yaml_str(""), Ok(Value::Null));
        assert!(parse_yaml_str("a: [1").is_err());
        assert!(parse_yaml_str("? [1]\n: x\n").is_err());
    }
}
