//! `pg_controldata` output parsing (pure) and invocation.

use std::collections::BTreeMap;

/// Fields of pg_control we use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlData {
    /// All `key: value` lines.
    pub fields: BTreeMap<String, String>,
}

impl ControlData {
    /// Parses `pg_controldata` text output.
    pub fn parse(text: &str) -> ControlData {
        let fields = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        ControlData { fields }
    }

    /// `Database system identifier`.
    pub fn sysid(&self) -> Option<&str> {
        self.fields
            .get("Database system identifier")
            .map(String::as_str)
    }

    /// `Database cluster state` (`shut down`, `in production`, `shut down in recovery`, …).
    pub fn state(&self) -> Option<&str> {
        self.fields
            .get("Database cluster state")
            .map(String::as_str)
    }

    /// `Latest checkpoint's TimeLineID`.
    pub fn timeline(&self) -> Option<u64> {
        self.fields
            .get("Latest checkpoint's TimeLineID")?
            .parse()
            .ok()
    }

    /// `Latest checkpoint location` as bytes.
    pub fn checkpoint_lsn(&self) -> Option<u64> {
        super::lsn::parse_lsn(self.fields.get("Latest checkpoint location")?)
    }

    /// Where our WAL is known to reach: the checkpoint location, or the minimum recovery
    /// end of a stopped replica when that is further.
    pub fn position(&self) -> Option<u64> {
        let ckpt = self.checkpoint_lsn();
        let min_rec = self
            .fields
            .get("Minimum recovery ending location")
            .and_then(|v| super::lsn::parse_lsn(v));
        match (ckpt, min_rec) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when pg_rewind can work: wal_log_hints on or data checksums enabled.
    pub fn rewind_possible(&self) -> bool {
        self.fields
            .get("wal_log_hints setting")
            .is_some_and(|v| v == "on")
            || self
                .fields
                .get("Data page checksum version")
                .is_some_and(|v| v != "0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields() {
        let text = "pg_control version number:            1300\nDatabase system identifier:           7277694203142172922\nDatabase cluster state:               in production\nLatest checkpoint location:           0/3000060\nLatest checkpoint's TimeLineID:       2\nwal_log_hints setting:                on\nData page checksum version:           0\n";
        let c = ControlData::parse(text);
        assert_eq!(c.sysid(), Some("7277694203142172922"));
        assert_eq!(c.state(), Some("in production"));
        assert_eq!(c.timeline(), Some(2));
        assert_eq!(c.checkpoint_lsn(), Some(0x3000060));
        assert!(c.rewind_possible());
    }
}
