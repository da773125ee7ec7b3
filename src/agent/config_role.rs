//! Which role's settings (`parameters_primary`, `pg_hba_replica`, …) the local PostgreSQL
//! runs with, and when a role switch must render the configuration again (as Patroni does at
//! the end of a cycle whose role changed).

use crate::config::dynamic_roles::ConfigRole;
use crate::ha::observation::{PgObservation, PgRole};

/// The role of the local PostgreSQL: the standby leader when this member holds the leader key
/// of a standby cluster; else its own answer when it runs (in recovery or not), else primary
/// when this member holds the leader key (it will start as the primary), else replica.
pub fn config_role(
    pg: &PgObservation,
    holds_leader_key: bool,
    standby_cluster: bool,
) -> ConfigRole {
    if holds_leader_key && standby_cluster {
        return ConfigRole::StandbyLeader;
    }
    role_of(pg.running, pg.role, holds_leader_key)
}

fn role_of(running: bool, role: Option<PgRole>, holds_leader_key: bool) -> ConfigRole {
    match (running, role) {
        (true, Some(PgRole::Primary)) => ConfigRole::Primary,
        (true, Some(PgRole::Replica)) => ConfigRole::Replica,
        _ if holds_leader_key => ConfigRole::Primary,
        _ => ConfigRole::Replica,
    }
}

/// The role the configuration was last resolved for.
#[derive(Debug, Default)]
pub struct RoleTracker {
    current: Option<ConfigRole>,
}

impl RoleTracker {
    /// Records `role`; true when it changed from a known role and the dynamic configuration
    /// has role-specific settings, i.e. the files must be rendered again for the new role.
    pub fn switched(&mut self, role: ConfigRole, has_overrides: bool) -> bool {
        let before = self.current.replace(role);
        let switched = before.is_some_and(|b| b != role) && has_overrides;
        if switched {
            tracing::info!(
                "PostgreSQL now runs as {}: applying the {} role-specific settings",
                role.suffix(),
                role.suffix()
            );
        }
        switched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_role_wins_else_the_leader_key() {
        assert_eq!(
            role_of(true, Some(PgRole::Replica), true),
            ConfigRole::Replica
        );
        assert_eq!(
            role_of(true, Some(PgRole::Primary), false),
            ConfigRole::Primary
        );
        assert_eq!(role_of(false, None, true), ConfigRole::Primary);
        assert_eq!(role_of(false, None, false), ConfigRole::Replica);
    }

    #[test]
    fn a_switch_re_renders_only_with_role_settings() {
        let mut t = RoleTracker::default();
        assert!(
            !t.switched(ConfigRole::Replica, true),
            "first role: nothing to redo"
        );
        assert!(!t.switched(ConfigRole::Replica, true));
        assert!(t.switched(ConfigRole::Primary, true), "promoted");
        assert!(!t.switched(ConfigRole::Replica, false), "no role settings");
        assert!(!t.switched(ConfigRole::Replica, true));
    }
}
