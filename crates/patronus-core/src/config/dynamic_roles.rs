//! Role-specific settings of the dynamic configuration, as Patroni reads them:
//! `postgresql.parameters_<role>` merged over `parameters`, `pg_hba_<role>` and
//! `pg_ident_<role>` replacing `pg_hba` / `pg_ident` (no merging), for the roles `primary`,
//! `replica` and `standby_leader` (the leader of a standby cluster).

use super::dynamic::DynamicConfig;
use serde_json::{Map, Value};

/// The role whose settings a member's PostgreSQL runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigRole {
    /// The leader (a running primary, or a member starting as the leader).
    Primary,
    /// Every other member.
    Replica,
    /// The leader of a standby cluster (it holds the leader key and replicates from the
    /// remote primary).
    StandbyLeader,
}

impl ConfigRole {
    /// The key suffix (`primary`, `replica`).
    pub fn suffix(self) -> &'static str {
        match self {
            ConfigRole::Primary => "primary",
            ConfigRole::Replica => "replica",
            ConfigRole::StandbyLeader => "standby_leader",
        }
    }
}

/// Overrides for one role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleSettings {
    /// `parameters_<role>`: merged over `parameters`.
    pub parameters: Map<String, Value>,
    /// `pg_hba_<role>`: replaces `pg_hba`.
    pub pg_hba: Option<Vec<String>>,
    /// `pg_ident_<role>`: replaces `pg_ident`.
    pub pg_ident: Option<Vec<String>>,
}

impl RoleSettings {
    /// True when the role changes nothing.
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.pg_hba.is_none() && self.pg_ident.is_none()
    }
}

/// The overrides of both roles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleOverrides {
    /// For the primary.
    pub primary: RoleSettings,
    /// For replicas.
    pub replica: RoleSettings,
    /// For the standby leader.
    pub standby_leader: RoleSettings,
}

impl RoleOverrides {
    /// The overrides of `role`.
    pub fn of(&self, role: ConfigRole) -> &RoleSettings {
        match role {
            ConfigRole::Primary => &self.primary,
            ConfigRole::Replica => &self.replica,
            ConfigRole::StandbyLeader => &self.standby_leader,
        }
    }

    /// True when no role changes anything (a role switch then renders nothing new).
    pub fn is_empty(&self) -> bool {
        self.primary.is_empty() && self.replica.is_empty() && self.standby_leader.is_empty()
    }
}

impl DynamicConfig {
    /// The configuration a member in `role` runs with: the role's parameters merged over the
    /// base ones, its pg_hba / pg_ident (when set) in place of the base lists.
    pub fn for_role(&self, role: ConfigRole) -> DynamicConfig {
        let o = self.roles.of(role);
        let mut d = self.clone();
        for (name, value) in &o.parameters {
            d.parameters.insert(name.clone(), value.clone());
        }
        if let Some(hba) = &o.pg_hba {
            d.pg_hba = Some(hba.clone());
        }
        if let Some(ident) = &o.pg_ident {
            d.pg_ident = Some(ident.clone());
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_parameters_merge_and_lists_replace() {
        let d = DynamicConfig::from_value(&json!({"postgresql": {
            "parameters": {"work_mem": "4MB", "log_min_duration_statement": -1},
            "parameters_replica": {"log_min_duration_statement": "250ms"},
            "parameters_primary": {"work_mem": "8MB"},
            "pg_hba": ["host all all 127.0.0.1/32 md5"],
            "pg_hba_replica": ["host all all 10.0.0.0/8 md5", "local all all trust"],
            "pg_ident_primary": ["m s u"],
        }}));
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        let r = d.for_role(ConfigRole::Replica);
        assert_eq!(r.parameters["log_min_duration_statement"], "250ms");
        assert_eq!(r.parameters["work_mem"], "4MB");
        assert_eq!(
            r.pg_hba.as_ref().map(Vec::len),
            Some(2),
            "replaced, not merged"
        );
        assert_eq!(r.pg_ident, None);
        let p = d.for_role(ConfigRole::Primary);
        assert_eq!(p.parameters["log_min_duration_statement"], -1);
        assert_eq!(p.parameters["work_mem"], "8MB");
        assert_eq!(p.pg_hba, d.pg_hba, "no pg_hba_primary: the base list");
        assert_eq!(p.pg_ident, Some(vec!["m s u".to_string()]));
        assert!(!d.roles.is_empty());
        assert!(DynamicConfig::from_value(&json!({})).roles.is_empty());
        // The standby leader has its own keys; without them it runs the base settings.
        assert_eq!(
            d.for_role(ConfigRole::StandbyLeader).parameters,
            d.parameters
        );
        let s = DynamicConfig::from_value(&json!({"postgresql": {
            "parameters_standby_leader": {"work_mem": "2MB"}}}));
        assert_eq!(
            s.for_role(ConfigRole::StandbyLeader).parameters["work_mem"],
            "2MB"
        );
        assert!(!s.roles.is_empty());
    }

    #[test]
    fn malformed_role_keys_are_warned_and_ignored() {
        let d = DynamicConfig::from_value(&json!({"postgresql": {
            "parameters_primary": 1, "pg_hba_replica": "x"}}));
        assert!(d.roles.is_empty());
        assert_eq!(
            d.warnings,
            [
                "postgresql.parameters_primary: expected a mapping, found a number; ignored",
                "postgresql.pg_hba_replica: expected a list of strings; ignored"
            ]
        );
    }
}
