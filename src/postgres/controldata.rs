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

    /// The timeline and position our data is known to reach, as Patroni reads them
    /// (`rewind.py`): a replica stopped or crashed in recovery (`shut down in recovery`,
    /// `in archive recovery`) is at its minimum recovery point, on that point's timeline —
    /// after a pg_rewind that is the new leader's timeline, while the latest checkpoint
    /// still lies on the old one; anything else (a primary, or a replica with no recovery
    /// point recorded) is at its latest checkpoint.
    pub fn local_position(&self) -> (Option<u64>, Option<u64>) {
        let in_recovery = matches!(
            self.state(),
            Some("shut down in recovery" | "in archive recovery")
        );
        if in_recovery {
            let lsn = self
                .fields
                .get("Minimum recovery ending location")
                .and_then(|v| super::lsn::parse_lsn(v))
                .filter(|l| *l != 0);
            let tl = self
                .fields
                .get("Min recovery ending loc's timeline")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|t| *t != 0);
            if let (Some(tl), Some(lsn)) = (tl, lsn) {
                return (Some(tl), Some(lsn));
            }
        }
        (self.timeline(), self.checkpoint_lsn())
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
        assert_eq!(c.local_position(), (Some(2), Some(0x3000060)));
    }

    fn control(state: &str, ckpt_tl: u64, min_rec: &str, min_rec_tl: u64) -> ControlData {
        ControlData::parse(&format!(
            "Database cluster state:               {state}\n\
             Latest checkpoint location:           0/3000060\n\
             Latest checkpoint's TimeLineID:       {ckpt_tl}\n\
             Minimum recovery ending location:     {min_rec}\n\
             Min recovery ending loc's timeline:   {min_rec_tl}\n"
        ))
    }

    #[test]
    fn a_rewound_replica_is_on_its_minimum_recovery_timeline() {
        // pg_rewind leaves the checkpoint on the old timeline and the minimum recovery point
        // on the source's: the member is on timeline 3, not 2.
        let c = control("in archive recovery", 2, "0/5000028", 3);
        assert_eq!(c.local_position(), (Some(3), Some(0x5000028)));
        let c = control("shut down in recovery", 2, "0/5000028", 3);
        assert_eq!(c.local_position(), (Some(3), Some(0x5000028)));
    }

    #[test]
    fn a_primary_or_a_replica_without_recovery_point_is_at_its_checkpoint() {
        let c = control("shut down", 2, "0/0", 0);
        assert_eq!(c.local_position(), (Some(2), Some(0x3000060)));
        let c = control("in production", 2, "0/5000028", 3);
        assert_eq!(c.local_position(), (Some(2), Some(0x3000060)));
        let c = control("in archive recovery", 2, "0/0", 0);
        assert_eq!(c.local_position(), (Some(2), Some(0x3000060)));
    }
}
