//! Which etcd member the DCS talks to. etcd-client's balanced channel spreads the calls
//! over every endpoint and keeps choosing a member that is frozen (its connection still
//! looks ready) or down: measured on a 3-member etcd with one member frozen, a third of
//! the calls waited for their attempt deadline and some spent the whole `retry_timeout`.
//! As Patroni's etcd client does, the DCS talks to one member at a time (one client per
//! endpoint, connected on first use) and moves to the next endpoint as soon as an attempt
//! on the current one fails.

use crate::dcs::error::DcsError;
use crate::dcs::traits::DcsResult;
use etcd_client::{Client, ConnectOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long connecting to one endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The endpoints of one etcd cluster and the one in use.
pub(super) struct Members {
    urls: Vec<String>,
    opts: ConnectOptions,
    clients: Vec<OnceCell<Client>>,
    current: AtomicUsize,
}

impl Members {
    /// The endpoints (`scheme://host:port`), the first one in use. `urls` is not empty.
    pub(super) fn new(urls: Vec<String>, opts: ConnectOptions) -> Members {
        Members {
            clients: urls.iter().map(|_| OnceCell::new()).collect(),
            urls,
            opts,
            current: AtomicUsize::new(0),
        }
    }

    /// The URL of endpoint `i`.
    pub(super) fn url(&self, i: usize) -> &str {
        &self.urls[i % self.urls.len()]
    }

    /// The index of the endpoint in use.
    pub(super) fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Uses endpoint `i` from now on.
    pub(super) fn set_current(&self, i: usize) {
        self.current.store(i % self.urls.len(), Ordering::Release);
    }

    /// The client of endpoint `i`, connecting it on first use (a connection that fails is
    /// tried again on the next use).
    pub(super) async fn client(&self, i: usize) -> Result<Client, etcd_client::Error> {
        let url = &self.urls[i];
        self.clients[i]
            .get_or_try_init(|| Client::connect([url.as_str()], Some(self.opts.clone())))
            .await
            .cloned()
    }

    /// Connects to the first endpoint that accepts the connection and uses it. Without
    /// credentials connecting sends nothing (the first call finds out whether etcd answers);
    /// with them it authenticates, so a member that is down is skipped here.
    pub(super) async fn connect_first(&self) -> DcsResult<()> {
        let mut last = None;
        for i in 0..self.urls.len() {
            match tokio::time::timeout(CONNECT_TIMEOUT, self.client(i)).await {
                Ok(Ok(_)) => {
                    self.set_current(i);
                    return Ok(());
                }
                Ok(Err(e)) => {
                    let e = DcsError::from(e).at(&self.urls[i]);
                    // Every endpoint shares the credentials and the TLS settings.
                    if !e.is_retryable() {
                        return Err(e);
                    }
                    last = Some(e);
                }
                Err(_) => {
                    last = Some(DcsError::Timeout(format!(
                        "etcd {}: connecting",
                        self.urls[i]
                    )))
                }
            }
        }
        Err(last.unwrap_or_else(|| DcsError::Refused("no etcd endpoints".into())))
    }

    /// An attempt on endpoint `i` failed: the next calls go to the next endpoint, unless
    /// another call has already moved on from `i`.
    pub(super) fn failed(&self, i: usize) {
        let n = self.urls.len();
        if n < 2 {
            return;
        }
        let next = (i + 1) % n;
        let moved = self
            .current
            .compare_exchange(i, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if moved {
            tracing::info!(
                "etcd {}: call failed or not answered, moving to {}",
                self.urls[i],
                self.urls[next]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Members {
        let urls = (0..n)
            .map(|i| format!("http://127.0.0.1:{}", 1 + i))
            .collect();
        Members::new(urls, ConnectOptions::new())
    }

    #[test]
    fn a_failure_moves_to_the_next_endpoint_once() {
        let m = members(3);
        assert_eq!(m.current(), 0);
        m.failed(0);
        assert_eq!(m.current(), 1);
        // A second call that failed on endpoint 0 does not skip the new one.
        m.failed(0);
        assert_eq!(m.current(), 1);
        m.failed(1);
        m.failed(2);
        assert_eq!(m.current(), 0, "wraps around");
    }

    #[test]
    fn one_endpoint_stays() {
        let m = members(1);
        m.failed(0);
        assert_eq!(m.current(), 0);
        m.set_current(4);
        assert_eq!(m.current(), 0);
    }

    #[tokio::test]
    async fn clients_connect_lazily() {
        // No etcd listens there: without auth, connecting makes no request.
        let m = members(2);
        assert!(m.client(1).await.is_ok());
        m.connect_first().await.unwrap();
        assert_eq!(m.current(), 0);
    }
}
