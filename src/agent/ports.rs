//! Ports: what the agent asks of the outside world, as traits, so the loop and its effects can
//! run against a fake or a simulated world. The DCS port is [`crate::dcs::Dcs`]; this module
//! holds the others built so far.

use crate::config::node::BasicAuth;
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

    /// `POST url` with a JSON body (and Basic auth when given) within `timeout`: the status
    /// code and the body text, or why the request failed.
    async fn post_json(
        &self,
        url: &str,
        body: &Value,
        auth: Option<&BasicAuth>,
        timeout: Duration,
    ) -> Result<(u16, String), String>;
}

/// The real peers: HTTP(S) with the agent's peer client (reloadable TLS settings).
pub struct HttpPeers {
    security: Arc<crate::tls::security::ApiSecurity>,
}

impl HttpPeers {
    /// Peers reached with the client of `security` (re-read at each call, so a reload of the
    /// TLS settings applies to the next call).
    pub fn new(security: Arc<crate::tls::security::ApiSecurity>) -> HttpPeers {
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

    async fn post_json(
        &self,
        url: &str,
        body: &Value,
        auth: Option<&BasicAuth>,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        let mut rb = self
            .security
            .peer_client()
            .post(url)
            .timeout(timeout)
            .json(body);
        if let Some(a) = auth {
            rb = rb.basic_auth(&a.username, Some(&a.password));
        }
        let reply = rb.send().await.map_err(|e| e.to_string())?;
        let code = reply.status().as_u16();
        Ok((code, reply.text().await.unwrap_or_default()))
    }
}

/// The userspace fence of this member: a separate process that kills PostgreSQL unless it is
/// re-armed in time (the real one is [`super::fence_client::FenceClient`]).
#[async_trait]
pub trait Fence: Send {
    /// Arms (or re-arms) the fence: PostgreSQL is killed unless re-armed `within`.
    async fn arm(&mut self, within: Duration) -> Result<(), String>;
    /// Disarms the fence.
    async fn disarm(&mut self) -> Result<(), String>;
}

#[async_trait]
impl Fence for super::fence_client::FenceClient {
    async fn arm(&mut self, within: Duration) -> Result<(), String> {
        super::fence_client::FenceClient::arm(self, within)
            .await
            .map_err(|e| e.to_string())
    }
    async fn disarm(&mut self) -> Result<(), String> {
        super::fence_client::FenceClient::disarm(self)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The wall clock, in milliseconds since the epoch.
pub trait Clock: Send + Sync {
    /// Now.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        super::driver::now_ms()
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake world for unit tests of agent code.

    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// A clock that moves only when told to.
    #[derive(Debug, Default)]
    pub(crate) struct ManualClock(AtomicU64);

    impl ManualClock {
        /// A clock showing `ms`.
        pub(crate) fn at(ms: u64) -> ManualClock {
            ManualClock(AtomicU64::new(ms))
        }

        /// Moves the clock `ms` forward.
        pub(crate) fn advance(&self, ms: u64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn the_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(250);
        assert_eq!(c.now_ms(), 1_250);
        let system = SystemClock.now_ms();
        assert!(
            system > 1_600_000_000_000,
            "the system clock is the epoch's: {system}"
        );
    }

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

        async fn post_json(
            &self,
            url: &str,
            _body: &Value,
            _auth: Option<&BasicAuth>,
            _timeout: Duration,
        ) -> Result<(u16, String), String> {
            if let Ok(mut c) = self.calls.lock() {
                c.push(format!("POST {url}"));
            }
            Err("no such peer".into())
        }
    }
}
