//! Why a DCS value written by someone else cannot be read (the cluster view names the key
//! with it, and the agent logs it once).

use crate::config::yaml::kind;
use serde_json::Value;

/// A DCS value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// JSON, but not an object where one is needed.
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A field of the wrong type.
    #[error("field '{field}': expected {expected}, found {found}")]
    Field {
        /// The field.
        field: String,
        /// What Patroni writes there.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// The object does not have the shape of the key (serde's reason).
    #[error("{0}")]
    Shape(String),
}

impl ValueError {
    /// `value` found where an object is needed.
    pub fn not_an_object(value: &Value) -> ValueError {
        ValueError::NotAnObject(kind(value))
    }

    /// Field `field` holds `found` where `expected` belongs.
    pub fn field(field: &str, expected: &'static str, found: &Value) -> ValueError {
        ValueError::Field {
            field: field.to_string(),
            expected,
            found: kind(found),
        }
    }
}

/// Parses JSON text, the error typed.
pub fn json(raw: &str) -> Result<Value, ValueError> {
    serde_json::from_str(raw).map_err(|e| ValueError::Json(e.to_string()))
}
