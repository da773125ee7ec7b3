//! JSON merging used by `PATCH /config` and `edit-config --set`.

use serde_json::{Map, Value};

/// Patroni's PATCH /config semantics: recursive merge of objects, `null` deletes the key, non-object values replace.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else if value.is_object() {
            let slot = target.entry(key.clone()).or_insert(Value::Null);
            merge_patch(slot, value);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

/// Sets a dotted path ("postgresql.parameters.work_mem") to a YAML-parsed value, creating objects; value "null" deletes. Used by edit-config --set.
///
/// Fails when the path is empty, has an empty segment, or crosses a value that is
/// not an object.
pub fn set_path(target: &mut Value, dotted: &str, value: Value) -> Result<(), String> {
    let keys: Vec<&str> = dotted.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(format!("invalid path '{dotted}': empty key"));
    }
    let Some((last, parents)) = keys.split_last() else {
        return Err(format!("invalid path '{dotted}'"));
    };
    if target.is_null() {
        *target = Value::Object(Map::new());
    }
    let mut node = target;
    for (depth, key) in parents.iter().enumerate() {
        let Some(map) = node.as_object_mut() else {
            return Err(not_an_object(&keys[..depth]));
        };
        if value.is_null() && !map.contains_key(*key) {
            return Ok(());
        }
        let child = map
            .entry((*key).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if child.is_null() {
            *child = Value::Object(Map::new());
        }
        node = child;
    }
    let Some(map) = node.as_object_mut() else {
        return Err(not_an_object(parents));
    };
    if value.is_null() {
        map.remove(*last);
    } else {
        map.insert((*last).to_string(), value);
    }
    Ok(())
}

fn not_an_object(keys: &[&str]) -> String {
    if keys.is_empty() {
        "the configuration is not an object".to_string()
    } else {
        format!("'{}' is not an object", keys.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_nested_and_null_delete() {
        let mut t =
            json!({"ttl": 30, "postgresql": {"parameters": {"a": 1, "b": 2}, "use_slots": true}});
        merge_patch(
            &mut t,
            &json!({"ttl": 40, "postgresql": {"parameters": {"a": null, "c": "x"}}, "pause": true}),
        );
        assert_eq!(
            t,
            json!({"ttl": 40, "pause": true,
                   "postgresql": {"parameters": {"b": 2, "c": "x"}, "use_slots": true}})
        );
    }

    #[test]
    fn merge_replaces_non_objects() {
        let mut t = json!({"a": [1, 2], "b": "s", "c": {"d": 1}});
        merge_patch(&mut t, &json!({"a": [3], "b": {"x": 1}, "c": 5}));
        assert_eq!(t, json!({"a": [3], "b": {"x": 1}, "c": 5}));
        let mut t = json!({"a": 1});
        merge_patch(&mut t, &json!([1]));
        assert_eq!(t, json!([1]));
        let mut t = Value::Null;
        merge_patch(&mut t, &json!({"a": {"b": null, "c": 1}}));
        assert_eq!(t, json!({"a": {"c": 1}}));
    }

    #[test]
    fn set_path_creates_and_deletes() {
        let mut t = json!({"ttl": 30});
        set_path(&mut t, "postgresql.parameters.work_mem", json!("8MB")).unwrap();
        assert_eq!(t["postgresql"]["parameters"]["work_mem"], json!("8MB"));
        set_path(&mut t, "ttl", json!(40)).unwrap();
        assert_eq!(t["ttl"], json!(40));
        set_path(&mut t, "postgresql.parameters.work_mem", Value::Null).unwrap();
        assert_eq!(t, json!({"ttl": 40, "postgresql": {"parameters": {}}}));
        set_path(&mut t, "missing.deep.key", Value::Null).unwrap();
        assert!(t.get("missing").is_none());
    }

    #[test]
    fn set_path_errors() {
        let mut t = json!({"ttl": 30});
        assert_eq!(
            set_path(&mut t, "ttl.x", json!(1)),
            Err("'ttl' is not an object".to_string())
        );
        assert!(set_path(&mut t, "a..b", json!(1)).is_err());
        assert!(set_path(&mut t, "", json!(1)).is_err());
        let mut t = json!([1]);
        assert!(set_path(&mut t, "a", json!(1)).is_err());
    }
}
