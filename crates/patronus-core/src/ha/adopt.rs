//! Taking over an existing installation (reference: patroni/ha.py `_run_cycle`, the sysid
//! step): a data directory that is not empty while the cluster has no leader and no valid
//! `initialize` key.
//!
//! * A running **replica** must not start the cluster: nothing says which primary it belongs
//!   to, and the leader race would promote it. Patroni logs "No initialize key in DCS and
//!   PostgreSQL is running as replica, aborting start" and exits; patronus logs the same and
//!   waits (no service-manager restart loop), until the primary's agent writes `initialize`.
//! * Anything else (a running primary, a stopped data directory): the `initialize` key is
//!   written with the data directory's system identifier; the ordinary race follows, so a
//!   running primary takes the leader key with its data intact (no initdb).

use super::action::{Action, Decision};
use super::observation::{Observation, PgRole};
use crate::dcs::Cluster;

/// What the take-over step decides for an initialised data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// The cluster is initialised or has a leader (or is paused): the ordinary decision.
    NotNeeded,
    /// A running replica with no leader and no `initialize` key: wait, never promote.
    StandbyWaits,
    /// Write `initialize` with our system identifier, then race as usual.
    Adopt,
}

/// Classifies the take-over case of a member with an initialised data directory.
pub fn takeover(o: &Observation, cluster: &Cluster) -> Takeover {
    if cluster.leader.is_some() || cluster.is_initialized() || o.config.pause {
        return Takeover::NotNeeded;
    }
    if o.pg.running && o.pg.role == Some(PgRole::Replica) {
        Takeover::StandbyWaits
    } else {
        Takeover::Adopt
    }
}

/// A running replica without leader and `initialize`: wait (Patroni's line, then ours).
pub(crate) fn standby_waits() -> Decision {
    Decision::new(
        "No initialize key in DCS and PostgreSQL is running as replica, waiting: \
         please first start patronus on the node running as primary",
        vec![],
    )
}

/// Adopting the data directory: `rest` (the ordinary decision of this cycle, so a running
/// primary races at once, as Patroni does in the same cycle), then `initialize` written with
/// its system identifier.
pub fn adopt(sysid: &str, create_new: bool, rest: Decision) -> Decision {
    // The ordinary actions first: a running primary takes the leader key before
    // `initialize` appears, so a standby waiting for `initialize` (StandbyWaits) finds a
    // leader to follow when it does, instead of racing the primary for the key.
    let mut actions = rest.actions;
    actions.push(Action::WriteInitialize {
        sysid: sysid.to_string(),
        create_new,
    });
    Decision::new(
        format!(
            "no initialize key in DCS: taking over the existing data directory (system identifier {sysid}); {}",
            rest.message
        ),
        actions,
    )
}

#[cfg(test)]
mod tests {
    use crate::ha::tests::B;
    use crate::ha::{Action, LockState};

    #[test]
    fn running_primary_without_initialize_writes_its_sysid() {
        let d = B::new("m1").primary().decide();
        // The leader key first, `initialize` last: a waiting standby then finds a leader.
        assert_eq!(d.actions[0], Action::AcquireLock { promote: false });
        assert_eq!(
            d.actions.last(),
            Some(&Action::WriteInitialize {
                sysid: "7000".into(),
                create_new: true
            })
        );
        assert!(
            d.message
                .contains("taking over the existing data directory"),
            "{}",
            d.message
        );
    }

    #[test]
    fn stopped_data_dir_without_initialize_writes_its_sysid() {
        let d = B::new("m1").primary().stopped("shut down").decide();
        assert_eq!(
            d.actions,
            vec![
                Action::StartReplica { leader: None },
                Action::WriteInitialize {
                    sysid: "7000".into(),
                    create_new: true
                }
            ]
        );
    }

    #[test]
    fn an_empty_initialize_key_is_overwritten_not_created() {
        // Patroni's create_new: only a missing key is created; an empty one (a bootstrap
        // that never wrote its sysid) is overwritten.
        let d = B::new("m1")
            .primary()
            .cluster(|c| c.initialize = Some(String::new()))
            .decide();
        assert!(d.has(&Action::WriteInitialize {
            sysid: "7000".into(),
            create_new: false
        }));
    }

    #[test]
    fn running_replica_without_leader_and_initialize_waits() {
        let d = B::new("m2").replica(None, 500).decide();
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        assert!(d
            .message
            .starts_with("No initialize key in DCS and PostgreSQL is running as replica"));
        // An empty initialize (a bootstrap in progress elsewhere) is not a valid sysid either.
        let d = B::new("m2")
            .replica(None, 500)
            .cluster(|c| c.initialize = Some(String::new()))
            .decide();
        assert!(d.actions.is_empty(), "{:?}", d.actions);
    }

    #[test]
    fn after_initialize_the_primary_races_and_the_replica_follows() {
        let d = B::new("m1").primary().initialized().decide();
        assert!(
            d.actions
                .iter()
                .any(|a| matches!(a, Action::AcquireLock { promote: false })),
            "{:?}",
            d.actions
        );
        let d = B::new("m2")
            .replica(None, 500)
            .initialized()
            .led_by("m1")
            .lock(LockState::NotHeld)
            .decide();
        assert!(
            d.actions
                .iter()
                .any(|a| matches!(a, Action::Follow { leader } if leader == "m1")),
            "{:?}",
            d.actions
        );
    }

    #[test]
    fn paused_cluster_is_not_taken_over() {
        let d = B::new("m2")
            .replica(None, 500)
            .with(|o| o.config.pause = true)
            .decide();
        assert!(!d.message.contains("initialize"), "{}", d.message);
    }
}
