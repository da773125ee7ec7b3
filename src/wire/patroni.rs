//! The `GET /patroni` body as a reader sees it: one struct for every client of a member's
//! status (peers in a leader race and a hand-over, `patronictl`-style commands of the CLI).
//! The REST server builds the body in `api::views::patroni_status`; a test there reads that
//! body back through [`PatroniStatus`], so writer and readers cannot drift apart.
//!
//! Reading is lenient per field, as the code it replaces was: a field of an unexpected
//! type (another agent's version, a proxy) counts as absent instead of making the whole
//! body unreadable.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A field read as `T` when it has that shape, else `None`.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// WAL positions of a `/patroni` body (`xlog`): `location` on a primary, the received and
/// replayed positions on a replica, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct XlogPositions {
    /// A primary's current WAL position.
    #[serde(default, deserialize_with = "lenient")]
    pub location: Option<u64>,
    /// A replica's last received position.
    #[serde(default, deserialize_with = "lenient")]
    pub received_location: Option<u64>,
    /// A replica's last replayed position.
    #[serde(default, deserialize_with = "lenient")]
    pub replayed_location: Option<u64>,
}

/// The fields of a `GET /patroni` body that members and tools act on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PatroniStatus {
    /// PostgreSQL state as Patroni names it (`running`, `stopped`, ...).
    #[serde(default, deserialize_with = "lenient")]
    pub state: Option<String>,
    /// `primary`, `replica`, `standby_leader`, ...
    #[serde(default, deserialize_with = "lenient")]
    pub role: Option<String>,
    /// When the postmaster started (changes on every restart), as sent.
    #[serde(default)]
    pub postmaster_start_time: Option<Value>,
    /// WAL positions.
    #[serde(default, deserialize_with = "lenient")]
    pub xlog: Option<XlogPositions>,
    /// Current timeline.
    #[serde(default, deserialize_with = "lenient")]
    pub timeline: Option<u64>,
    /// Published tags (read with [`crate::config::Tags`]).
    #[serde(default, deserialize_with = "lenient")]
    pub tags: Option<Map<String, Value>>,
}

impl PatroniStatus {
    /// Reads a body; `None` when it is not a JSON object.
    pub fn from_value(v: &Value) -> Option<PatroniStatus> {
        v.is_object()
            .then(|| serde_json::from_value(v.clone()).ok())
            .flatten()
    }

    /// Reads a body from its text; `None` when it is not a JSON object.
    pub fn from_text(text: &str) -> Option<PatroniStatus> {
        PatroniStatus::from_value(&serde_json::from_str(text).ok()?)
    }

    /// PostgreSQL is running.
    pub fn is_running(&self) -> bool {
        self.state.as_deref() == Some("running")
    }

    /// A running primary (it reports `xlog.location` or the role `primary`).
    pub fn is_running_primary(&self) -> bool {
        let location = self.xlog.as_ref().is_some_and(|x| x.location.is_some());
        self.is_running() && (location || self.role.as_deref() == Some("primary"))
    }

    /// The furthest position it reports (primary location, received or replayed; 0 when
    /// none), compared in a leader race.
    pub fn wal_position(&self) -> u64 {
        self.xlog.as_ref().map_or(0, |x| {
            [x.location, x.received_location, x.replayed_location]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(0)
        })
    }

    /// A replica's reported position (received or replayed, the larger), if any.
    pub fn replica_position(&self) -> Option<u64> {
        let x = self.xlog.as_ref()?;
        x.received_location.max(x.replayed_location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_another_shape_count_as_absent() {
        let p = PatroniStatus::from_text(
            r#"{"state": 5, "role": "replica", "xlog": {"received_location": "x",
                "replayed_location": 7}, "timeline": "3", "tags": []}"#,
        )
        .expect("an object");
        assert_eq!(p.state, None);
        assert_eq!(p.replica_position(), Some(7));
        assert_eq!((p.timeline, p.tags), (None, None));
        assert_eq!(PatroniStatus::from_text("[1]"), None);
        assert_eq!(PatroniStatus::from_text("not json"), None);
    }
}
