//! Logs the DCS values the agent could not read or use (a corrupt `sync`, `status`,
//! `failover`, `history`, member or `gitops` key: [`crate::dcs::Cluster::warnings`]), each
//! naming its key, once per change rather than every cycle.

/// Remembers the warnings last logged.
#[derive(Debug, Default)]
pub struct DcsNotices {
    last: Vec<String>,
}

impl DcsNotices {
    /// Logs each warning of `warnings` that was not there the previous time, and a line
    /// when all of them are gone. Returns the newly logged ones.
    pub fn check(&mut self, warnings: &[String]) -> Vec<String> {
        let fresh: Vec<String> = warnings
            .iter()
            .filter(|w| !self.last.contains(w))
            .cloned()
            .collect();
        for w in &fresh {
            tracing::warn!("unreadable DCS value: {}", crate::secrets::redact(w));
        }
        if warnings.is_empty() && !self.last.is_empty() {
            tracing::info!("every DCS value is readable again");
        }
        self.last = warnings.to_vec();
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_warning_is_logged_once_per_change() {
        let mut n = DcsNotices::default();
        let sync = "sync: invalid JSON: EOF".to_string();
        let status = "status: invalid JSON: x".to_string();
        assert_eq!(n.check(std::slice::from_ref(&sync)), vec![sync.clone()]);
        assert!(n.check(std::slice::from_ref(&sync)).is_empty());
        assert_eq!(n.check(&[sync.clone(), status.clone()]), vec![status]);
        assert!(n.check(&[]).is_empty());
        assert_eq!(n.check(std::slice::from_ref(&sync)), vec![sync]);
    }
}
