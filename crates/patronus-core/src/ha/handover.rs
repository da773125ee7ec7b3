//! Who may take over a planned switchover (pure): the hand-over candidate filter the agent's
//! hand-over task (`agent::handover`) applies before it stops PostgreSQL.

use crate::config::dynamic::SyncMode;
use crate::dcs::Cluster;

/// A member the stopped primary will ask for its WAL position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverCandidate {
    /// Member name.
    pub name: String,
    /// Its REST API URL (`/patroni` is polled there).
    pub api_url: String,
}

/// The members that may receive a planned hand-over from `me`: every other member with a
/// REST URL and a failover priority above 0; only `candidate` when one is named; in
/// synchronous mode (with a `sync` key) and without a named candidate, only the members the
/// `sync` key allows to be promoted ([`super::sync::promotable`]).
pub fn handover_candidates(
    cluster: &Cluster,
    me: &str,
    candidate: Option<&str>,
    mode: SyncMode,
) -> Vec<HandoverCandidate> {
    let sync_only =
        (mode != SyncMode::Off && cluster.sync.is_some()).then(|| super::sync::promotable(cluster));
    cluster
        .members
        .iter()
        .filter(|m| m.name != me && !m.data.api_url.is_empty() && !m.data.nofailover())
        .filter(|m| candidate.is_none_or(|c| c == m.name))
        .filter(|m| candidate.is_some() || sync_only.as_ref().is_none_or(|s| s.contains(&m.name)))
        .map(|m| HandoverCandidate {
            name: m.name.clone(),
            api_url: m.data.api_url.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcs::{Cluster, Member, MemberEntry, SyncState, Versioned};

    fn member(name: &str, tags: &str) -> MemberEntry {
        let url = if name == "nourl" {
            String::new()
        } else {
            format!("http://{name}:8008/patroni")
        };
        let raw =
            format!(r#"{{"api_url":"{url}","state":"running","role":"replica","tags":{tags}}}"#);
        MemberEntry {
            name: name.into(),
            data: Member::parse(&raw).expect("member JSON"),
            version: 1,
            lease: 1,
        }
    }

    fn cluster(sync: Option<&str>) -> Cluster {
        Cluster {
            members: vec![
                member("p", "{}"),
                member("a", "{}"),
                member("b", "{}"),
                member("nofail", r#"{"nofailover":true}"#),
                member("nourl", "{}"),
            ],
            sync: sync.map(|s| Versioned {
                value: SyncState::parse(&format!(r#"{{"leader":"p","sync_standby":"{s}"}}"#))
                    .expect("sync JSON"),
                version: 3,
            }),
            ..Cluster::default()
        }
    }

    fn names(v: Vec<HandoverCandidate>) -> Vec<String> {
        v.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn any_healthy_member_but_me_without_nofailover_or_url() {
        let c = cluster(None);
        assert_eq!(
            names(handover_candidates(&c, "p", None, SyncMode::Off)),
            ["a", "b"]
        );
    }

    #[test]
    fn a_named_candidate_is_the_only_one() {
        let c = cluster(Some("a"));
        let got = handover_candidates(&c, "p", Some("b"), SyncMode::On);
        assert_eq!(names(got), ["b"]);
        assert!(handover_candidates(&c, "p", Some("nofail"), SyncMode::Off).is_empty());
    }

    #[test]
    fn sync_mode_keeps_only_promotable_members() {
        let c = cluster(Some("b"));
        assert_eq!(
            names(handover_candidates(&c, "p", None, SyncMode::On)),
            ["b"]
        );
        // Without synchronous mode the key does not restrict the hand-over.
        assert_eq!(
            names(handover_candidates(&c, "p", None, SyncMode::Off)),
            ["a", "b"]
        );
    }

    #[test]
    fn sync_mode_without_a_key_does_not_restrict() {
        let c = cluster(None);
        assert_eq!(
            names(handover_candidates(&c, "p", None, SyncMode::On)),
            ["a", "b"]
        );
    }
}
