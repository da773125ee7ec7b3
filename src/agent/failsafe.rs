//! Failsafe mode in the agent: the state shared with the REST API (the last `failsafe` key
//! and `failsafe_mode` read from the DCS, a leader's calls on this replica, whether this
//! primary runs on failsafe), the leader's `POST /failsafe` round and the key's upkeep. What
//! to do with them is decided by the pure [`crate::ha::failsafe`].

use super::driver::{CycleContext, Driver};
use super::member::{api_url, conn_url};
use crate::config::node::BasicAuth;
use crate::config::timing::secs_to_ms;
use crate::config::NodeConfig;
use crate::dcs::cluster::failsafe_topology;
use crate::dcs::{keys, Cluster};
use crate::ha::{failsafe, FailsafeCall, FailsafeOutcome, LockState, Observation};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long one member may take to answer `POST /failsafe` (Patroni: 2 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The failsafe state shared by the HA loop and the REST API.
#[derive(Debug, Default)]
pub struct FailsafeState {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// `failsafe_mode` of the last configuration read from the DCS.
    enabled: bool,
    /// `ttl` of that configuration.
    ttl: u64,
    /// The last `failsafe` key read from the DCS or written by us (Patroni's `dcs.failsafe`).
    key: Option<Value>,
    /// Replica: the last leader that called `POST /failsafe`.
    call: Option<LeaderCall>,
    /// Primary: when the members last confirmed it without the DCS (0 = they did not).
    confirmed_at_ms: u64,
}

/// A leader's `POST /failsafe` as received by this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderCall {
    /// The leader's member name.
    pub name: String,
    /// Its PostgreSQL URL, when sent.
    pub conn_url: Option<String>,
    /// Its REST API URL, when sent.
    pub api_url: Option<String>,
    /// When it called (ms since the epoch).
    pub at_ms: u64,
}

impl FailsafeState {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(e) => f(&mut e.into_inner()),
        }
    }

    /// Remembers what the DCS said this cycle: the mode, `ttl` and the `failsafe` key.
    pub fn remember(&self, cluster: &Cluster, enabled: bool, ttl: u64) {
        self.with(|s| {
            s.enabled = enabled;
            s.ttl = ttl;
            s.key = cluster.failsafe.as_ref().map(|f| f.value.clone());
        });
    }

    /// `failsafe_mode` as last read from the DCS.
    pub fn enabled(&self) -> bool {
        self.with(|s| s.enabled)
    }

    /// The last known `failsafe` key (`GET /failsafe`).
    pub fn key(&self) -> Option<Value> {
        self.with(|s| s.key.clone())
    }

    /// The key as the leader just wrote it (None: deleted).
    pub fn set_key(&self, key: Option<Value>) {
        self.with(|s| s.key = key);
    }

    /// True when the last known `failsafe` key lists `name`.
    pub fn is_member(&self, name: &str) -> bool {
        self.with(|s| {
            s.key
                .as_ref()
                .and_then(failsafe_topology)
                .is_some_and(|t| t.contains_key(name))
        })
    }

    /// Records a leader's `POST /failsafe`.
    pub fn accept(&self, call: LeaderCall) {
        self.with(|s| s.call = Some(call));
    }

    /// The last leader call, as the decision sees it.
    pub fn last_call(&self) -> Option<FailsafeCall> {
        self.with(|s| {
            s.call.as_ref().map(|c| FailsafeCall {
                leader: c.name.clone(),
                at_ms: c.at_ms,
            })
        })
    }

    /// Records that every member confirmed this primary at `at_ms` (0: it runs on its
    /// lease again, or it was not confirmed).
    pub fn set_confirmed(&self, at_ms: u64) {
        self.with(|s| s.confirmed_at_ms = at_ms);
    }

    /// True while this primary runs on the members' last confirmation.
    pub fn confirmed(&self) -> bool {
        self.with(|s| s.confirmed_at_ms > 0)
    }

    /// Forgets confirmations and leader calls (Patroni's `set_is_active(0)`).
    pub fn reset(&self) {
        self.with(|s| {
            s.confirmed_at_ms = 0;
            s.call = None;
        });
    }

    /// Patroni's `failsafe_mode_is_active`: this primary was confirmed, or a leader called
    /// this replica, less than `ttl` ago.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.with(|s| {
            let last = s
                .call
                .as_ref()
                .map_or(s.confirmed_at_ms, |c| c.at_ms.max(s.confirmed_at_ms));
            last > 0 && now_ms < last.saturating_add(secs_to_ms(s.ttl))
        })
    }
}

impl Driver {
    /// Failsafe duties of this cycle, before the decision: remember the DCS's view (or, the
    /// DCS failing, use the last one), ask the members when [`failsafe::must_confirm`] says
    /// so, and put their answers and a leader's last call into the observation. Confirmed,
    /// the members grant us `ttl` from the start of the round: the fence is fed from there.
    pub(super) async fn failsafe_cycle(&mut self, obs: &mut Observation) {
        let node = self.sh.node();
        let state = &self.sh.failsafe;
        match &obs.cluster {
            Some(c) => state.remember(c, obs.config.failsafe_mode, obs.config.ttl),
            None => obs.config.failsafe_mode = state.enabled(),
        }
        if obs.cluster.is_some() && obs.lock != LockState::RefreshFailed {
            // The DCS answers: no primary here runs on failsafe (Patroni's set_is_active(0)).
            state.set_confirmed(0);
        }
        if obs.has_lock() {
            state.reset();
        }
        obs.failsafe.api_url = api_url(&node);
        obs.failsafe.last_call = state.last_call();
        if !failsafe::must_confirm(obs) {
            return;
        }
        let started = tokio::time::Instant::now();
        let outcome = self.confirm(&node).await;
        if outcome == FailsafeOutcome::Confirmed {
            self.sh.failsafe.set_confirmed(self.sh.clock.now_ms());
            self.lock_renewed_at = Some(started);
        } else {
            self.sh.failsafe.reset();
        }
        obs.failsafe.outcome = Some(outcome);
    }

    /// Calls `POST /failsafe` on every other member of the last known `failsafe` key, in
    /// parallel; confirmed when all of them accept.
    async fn confirm(&self, node: &NodeConfig) -> FailsafeOutcome {
        let topology = self.sh.failsafe.key().as_ref().and_then(failsafe_topology);
        let Some(targets) = failsafe::targets(topology.as_ref(), &node.name) else {
            tracing::warn!("the failsafe key does not list this member: nobody can confirm it");
            return FailsafeOutcome::NoTopology;
        };
        let body = json!({"name": node.name, "conn_url": conn_url(node), "api_url": api_url(node)});
        let auth = node.restapi.authentication.as_ref();
        let calls = targets
            .into_iter()
            .map(|(name, url)| call_member(self.sh.peers.as_ref(), name, url, &body, auth));
        let answers = futures::future::join_all(calls).await;
        failsafe::outcome(&answers)
    }

    /// Writes (or with `None` deletes) the `failsafe` key as the leader.
    pub(super) async fn write_failsafe(
        &mut self,
        ctx: &CycleContext,
        topology: Option<BTreeMap<String, String>>,
    ) {
        let seen = ctx
            .cluster
            .as_ref()
            .and_then(|c| c.failsafe.as_ref())
            .map(|f| f.version);
        let dcs = &self.sh.dcs;
        let result = match (&topology, seen) {
            (None, None) => return,
            (None, Some(version)) => {
                tracing::info!("failsafe mode is off: removing the failsafe key");
                dcs.delete_raw(keys::FAILSAFE, version).await
            }
            (Some(t), _) => {
                let value = serde_json::to_string(t).unwrap_or_default();
                dcs.write_raw(keys::FAILSAFE, &value, None).await
            }
        };
        match result {
            Ok(true) => self.sh.failsafe.set_key(topology.map(|t| json!(t))),
            Ok(false) => tracing::info!("failsafe key changed by someone else"),
            Err(e) => tracing::warn!("failed to update the failsafe key: {e}"),
        }
    }
}

/// One `POST /failsafe`: (member, accepted). Accepted is Patroni's rule: 200 and `Accepted`.
async fn call_member(
    peers: &dyn super::ports::Peers,
    name: String,
    api_url: String,
    body: &Value,
    auth: Option<&BasicAuth>,
) -> (String, bool) {
    let Some(url) = endpoint(&api_url) else {
        tracing::warn!("Request failed to {name}: POST {api_url} (not a URL)");
        return (name, false);
    };
    match peers
        .post_json(url.as_str(), body, auth, CALL_TIMEOUT)
        .await
    {
        Ok((code, text)) => {
            tracing::info!("Got response from {name} {url}: {text}");
            (name, code == 200 && text == "Accepted")
        }
        Err(e) => {
            tracing::warn!("Request failed to {name}: POST {url} ({e})");
            (name, false)
        }
    }
}

/// A member's `…/patroni` URL turned into its `…/failsafe` one (Patroni's
/// `get_endpoint_url`); None when it is not an http(s) URL.
pub fn endpoint(api_url: &str) -> Option<reqwest::Url> {
    let mut u = reqwest::Url::parse(api_url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    u.set_path("/failsafe");
    u.set_query(None);
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failsafe_endpoint_replaces_the_path() {
        let u = endpoint("http://10.0.0.2:8008/patroni").unwrap();
        assert_eq!(u.as_str(), "http://10.0.0.2:8008/failsafe");
        let u = endpoint("https://h:1/patroni?x=1").unwrap();
        assert_eq!(u.as_str(), "https://h:1/failsafe");
        assert!(endpoint("").is_none());
        assert!(endpoint("mailto:a@b").is_none());
    }

    #[test]
    fn active_for_ttl_after_a_confirmation_or_a_call() {
        let s = FailsafeState::default();
        let c = Cluster {
            failsafe: Some(crate::dcs::Versioned {
                value: json!({"m1": "http://a/patroni"}),
                version: 2,
            }),
            ..Cluster::default()
        };
        s.remember(&c, true, 10);
        assert!(s.enabled() && s.is_member("m1") && !s.is_member("m2"));
        assert!(!s.is_active(1_000));
        assert!(!s.confirmed());
        s.set_confirmed(1_000);
        assert!(s.confirmed() && s.is_active(10_999) && !s.is_active(11_000));
        s.reset();
        s.accept(LeaderCall {
            name: "m1".into(),
            conn_url: None,
            api_url: None,
            at_ms: 5_000,
        });
        assert!(s.is_active(14_000));
        assert_eq!(s.last_call().unwrap().leader, "m1");
        s.reset();
        assert!(s.last_call().is_none() && !s.is_active(5_001));
    }
}
