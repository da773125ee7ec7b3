//! DCS key layout, exactly as Patroni's (`/<namespace>/<scope>/…`).

/// Builds the key paths of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    base: String,
}

impl Keys {
    /// Creates the layout for `namespace` (e.g. `/service`, `service/`, `/db/`) and `scope`.
    pub fn new(namespace: &str, scope: &str) -> Self {
        let mut ns: String = namespace
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        if ns.is_empty() {
            ns = "service".to_string();
        }
        Keys {
            base: format!("/{ns}/{scope}"),
        }
    }

    /// The cluster prefix with a trailing slash, for ranges and watches.
    pub fn prefix(&self) -> String {
        format!("{}/", self.base)
    }

    /// The cluster base path without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Full path of a key relative to the cluster base (`leader`, `members/p1`, …).
    pub fn key(&self, rel: &str) -> String {
        format!("{}/{rel}", self.base)
    }

    /// `<base>/leader`.
    pub fn leader(&self) -> String {
        self.key(LEADER)
    }

    /// `<base>/members/<name>`.
    pub fn member(&self, name: &str) -> String {
        self.key(&format!("{MEMBERS}{name}"))
    }

    /// Strips the base from a full key, returning the relative part.
    pub fn relative<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.base.as_str())?.strip_prefix('/')
    }
}

/// True for keys whose change should wake the HA loop at once: the leader lock, the
/// configuration, failover requests, bootstrap and sync state. Member and status keys are
/// written every cycle and would make the loops wake each other without end.
pub fn wakes_loop(rel: &str) -> bool {
    matches!(rel, LEADER | CONFIG | FAILOVER | INITIALIZE | SYNC)
}

/// Relative key of the leader lock.
pub const LEADER: &str = "leader";
/// Relative key of the bootstrap marker / system identifier.
pub const INITIALIZE: &str = "initialize";
/// Relative key of the dynamic configuration.
pub const CONFIG: &str = "config";
/// Relative prefix of member keys.
pub const MEMBERS: &str = "members/";
/// Relative key of the leader's status (optime, slots).
pub const STATUS: &str = "status";
/// Relative key of the timeline history.
pub const HISTORY: &str = "history";
/// Relative key of a requested failover / switchover.
pub const FAILOVER: &str = "failover";
/// Relative key of the synchronous replication state.
pub const SYNC: &str = "sync";
/// Relative key of the failsafe topology.
pub const FAILSAFE: &str = "failsafe";
/// Relative key of the legacy leader optime.
pub const OPTIME_LEADER: &str = "optime/leader";
/// Relative key of patronus' GitOps record (ignored by Patroni).
pub const GITOPS: &str = "gitops";
/// Relative key of the active reconciler's lock (its `--id`, on its lease; ignored by
/// Patroni, which reads only the keys it knows under the cluster prefix).
pub const GITOPS_LOCK: &str = "gitops-lock";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_normalised_like_patroni() {
        assert_eq!(
            Keys::new("/service", "acme").leader(),
            "/service/acme/leader"
        );
        assert_eq!(Keys::new("service/", "acme").prefix(), "/service/acme/");
        assert_eq!(Keys::new("/db/", "c").member("n1"), "/db/c/members/n1");
        assert_eq!(Keys::new("//a//b/", "c").base(), "/a/b/c");
        assert_eq!(Keys::new("", "c").base(), "/service/c");
    }

    #[test]
    fn relative_strips_base() {
        let k = Keys::new("/service", "acme");
        assert_eq!(k.relative("/service/acme/members/p1"), Some("members/p1"));
        assert_eq!(k.relative("/service/acme2/leader"), None);
    }
}
