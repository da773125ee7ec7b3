//! The pure part of YAML handling shared by the core: naming a JSON value's type in messages.
//! Parsing YAML text lives in the main crate (`patronus::config::yaml::parse_yaml_str`).

use serde_json::Value;

/// Name of a JSON value's type, for messages (`a string`, `a list`, ...).
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds() {
        assert_eq!(kind(&json!([])), "a list");
        assert_eq!(kind(&json!({})), "a mapping");
        assert_eq!(kind(&json!(1)), "a number");
    }
}
