//! REST request bodies as pure functions (no I/O, no panic on any input): the JSON object
//! bodies of `POST /restart`, `/reinitialize`, `/switchover`, `/failover` (fields checked
//! by [`super::switchover::validate`]) and `PATCH`/`PUT /config`. Errors carry the HTTP
//! status and Patroni's text, naming the field.

use crate::postgres::version::version_number;
use serde::Serialize;
use serde_json::Value;

/// Parses a JSON object body. An empty (or blank) body is `{}` when `empty_ok`, else an
/// error; anything but an object is a 400 text.
pub fn parse_object(body: &[u8], empty_ok: bool) -> Result<Value, String> {
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("Bad request: the body must be a JSON object".into()),
        Err(e) => Err(format!("Bad request: invalid JSON: {e}")),
    }
}

/// A `POST /restart` body: read by the server ([`parse_restart`]), written by the CLI and
/// the reconciler ([`RestartRequest::body`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RestartRequest {
    /// Restart only a member of this role (`primary`/`master`, `replica`, `standby_leader`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Restart only when the running version is older than this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_version: Option<String>,
    /// Restart only when a restart is pending.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restart_pending: bool,
    /// Seconds a scheduled restart may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// ISO 8601 time with zone of a scheduled restart (checked by the handler).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

impl RestartRequest {
    /// The JSON body a client sends (unset fields left out).
    pub fn body(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Reads the fields of a `POST /restart` body; Err(status, text) names the bad field.
pub fn parse_restart(v: &Value) -> Result<RestartRequest, (u16, String)> {
    let role = v.get("role").and_then(Value::as_str).map(str::to_string);
    if let Some(r) = &role {
        if !matches!(
            r.as_str(),
            "primary" | "master" | "replica" | "standby_leader"
        ) {
            return Err((
                400,
                format!(
                    "PostgreSQL role should be either primary, standby_leader, or replica, not {r}"
                ),
            ));
        }
    }
    let postgres_version = v.get("postgres_version").and_then(|x| {
        x.as_str()
            .map(str::to_string)
            .or_else(|| x.as_f64().map(|f| f.to_string()))
    });
    if let Some(pv) = &postgres_version {
        if version_number(pv).is_none() {
            return Err((
                400,
                format!("PostgreSQL version should be in the first.major.minor format, not {pv}"),
            ));
        }
    }
    Ok(RestartRequest {
        role,
        postgres_version,
        restart_pending: v
            .get("restart_pending")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        timeout: v.get("timeout").and_then(|t| {
            t.as_u64()
                .or_else(|| t.as_str().and_then(|s| s.trim().parse().ok()))
        }),
        schedule: v
            .get("schedule")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// A `POST /reinitialize` body: read by the server ([`parse_reinitialize`]), written by the
/// CLI ([`ReinitializeRequest::body`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReinitializeRequest {
    /// Clone from the leader even when another member is configured to clone from.
    pub from_leader: bool,
    /// Cancel a running task first.
    pub force: bool,
}

impl ReinitializeRequest {
    /// The JSON body a client sends.
    pub fn body(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Reads the fields of a `POST /reinitialize` body (anything but `true` is false).
pub fn parse_reinitialize(v: &Value) -> ReinitializeRequest {
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    ReinitializeRequest {
        from_leader: flag("from_leader"),
        force: flag("force"),
    }
}

/// A `POST /failsafe` body: the calling leader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailsafeRequest {
    /// The leader's member name (required).
    pub name: String,
    /// Its PostgreSQL URL.
    pub conn_url: Option<String>,
    /// Its REST API URL.
    pub api_url: Option<String>,
}

/// Reads a `POST /failsafe` body; the leader's `name` is required.
pub fn parse_failsafe(v: &Value) -> Result<FailsafeRequest, (u16, String)> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let name = text("name").filter(|n| !n.is_empty()).ok_or((
        400,
        "Bad request: 'name' (the leader's member name) is required".to_string(),
    ))?;
    Ok(FailsafeRequest {
        name,
        conn_url: text("conn_url"),
        api_url: text("api_url"),
    })
}

/// The dynamic configuration after `PATCH /config` with `patch` (recursive merge, null
/// deletes); `current` is the value in the DCS.
pub fn patched_config(current: &Value, patch: &Value) -> Value {
    let mut merged = current.clone();
    crate::config::merge_patch(&mut merged, patch);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_must_be_objects() {
        assert_eq!(parse_object(b"  \n", true), Ok(json!({})));
        assert!(parse_object(b"", false).is_err_and(|e| e.contains("invalid JSON")));
        assert!(parse_object(b"[1]", true).is_err_and(|e| e.contains("JSON object")));
        assert_eq!(parse_object(br#"{"a":1}"#, false), Ok(json!({"a": 1})));
    }

    #[test]
    fn restart_fields_are_checked_with_their_name() {
        let r = parse_restart(&json!({"role": "replica", "postgres_version": 15.4,
            "restart_pending": true, "timeout": "30", "schedule": "2030-01-01T00:00:00Z"}));
        let r = r.unwrap_or_default();
        assert_eq!(r.role.as_deref(), Some("replica"));
        assert_eq!(r.postgres_version.as_deref(), Some("15.4"));
        assert!(r.restart_pending);
        assert_eq!(r.timeout, Some(30));
        assert!(r.schedule.is_some());
        let e = parse_restart(&json!({"role": "boss"})).unwrap_err();
        assert_eq!(e.0, 400);
        assert!(e.1.contains("role") && e.1.contains("boss"));
        let e = parse_restart(&json!({"postgres_version": "1e400"})).unwrap_err();
        assert!(e.1.contains("version"), "{e:?}");
    }

    #[test]
    fn reinitialize_flags_and_config_patch() {
        let r = parse_reinitialize(&json!({"force": true, "from_leader": "yes"}));
        assert_eq!(
            r,
            ReinitializeRequest {
                from_leader: false,
                force: true
            }
        );
        let merged = patched_config(&json!({"ttl": 30, "x": 1}), &json!({"x": null, "y": 2}));
        assert_eq!(merged, json!({"ttl": 30, "y": 2}));
    }

    #[test]
    fn failsafe_calls_name_their_leader() {
        let r = parse_failsafe(
            &json!({"name": "m1", "conn_url": "postgres://h:5432/postgres",
            "api_url": "http://h:8008/patroni", "slots": {"m1": 5}}),
        );
        assert_eq!(r.as_ref().map(|r| r.name.as_str()), Ok("m1"));
        assert_eq!(
            r.ok().and_then(|r| r.api_url).as_deref(),
            Some("http://h:8008/patroni")
        );
        for bad in [json!({}), json!({"name": ""}), json!({"name": 3})] {
            let e = parse_failsafe(&bad).unwrap_err();
            assert!(e.0 == 400 && e.1.contains("name"), "{e:?}");
        }
    }

    #[test]
    fn client_bodies_read_back_as_sent() {
        let r = RestartRequest {
            role: Some("replica".into()),
            postgres_version: Some("15.4".into()),
            restart_pending: true,
            timeout: Some(30),
            schedule: Some("2026-11-30T10:00:00+00:00".into()),
        };
        assert_eq!(parse_restart(&r.body()), Ok(r));
        assert_eq!(RestartRequest::default().body(), serde_json::json!({}));
        let r = ReinitializeRequest {
            from_leader: true,
            force: true,
        };
        assert_eq!(parse_reinitialize(&r.body()), r);
    }
}
