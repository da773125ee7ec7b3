//! Ports: what the agent asks of the outside world, as traits, so the loop and its effects can
//! run against a fake or a simulated world. The DCS port is [`crate::dcs::Dcs`]; this module
//! holds the others built so far.

use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// REST calls to other members.
#[async_trait]
pub trait Peers: Send + Sync {
    /// `GET url` (a member's `/patroni`) within `timeout`: its JSON body, or None when the
    /// member does not answer in time or not with JSON.
    async fn get_json(&self, url: &str, timeout: Duration) -> Option<Value>;
}

/// The real peers: HTTP(S) with the agent's peer client (reloadable TLS settings).
pub struct HttpPeers {
    security: Arc<crate::api::security::ApiSecurity>,
}

impl HttpPeers {
    /// Peers reached with the client of `security` (re-read at each call, so a reload of the
    /// TLS settings applies to the next call).
    pub fn new(security: Arc<crate::api::security::ApiSecurity>) -> HttpPeers {
        HttpPeers { security }
    }
}

#[async_trait]
impl Peers for HttpPeers {
    async fn get_json(&self, url: &str, timeout: Duration) -> Option<Value> {
        let reply = self
            .security
            .peer_client()
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .ok()?;
        reply.json::<Value>().await.ok()
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake world for unit tests of agent code.

    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Peers answering canned `/patroni` bodies by URL (None = unreachable), recording the
    /// calls.
    #[derive(Default)]
    pub(crate) struct FakePeers {
        pub(crate) bodies: HashMap<String, Value>,
        pub(crate) calls: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Peers for FakePeers {
        async fn get_json(&self, url: &str, _timeout: Duration) -> Option<Value> {
            if let Ok(mut c) = self.calls.lock() {
                c.push(url.to_string());
            }
            self.bodies.get(url).cloned()
        }
    }
}
