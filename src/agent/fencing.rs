//! The agent's fencing duties: arm the fence and the watchdog before a promotion, feed them
//! after every successful lock update, disarm them when no primary runs here (the rule is
//! the pure [`fence_step`]); a member whose fence or required watchdog cannot be armed does
//! not lead.

use super::driver::{CycleContext, Driver};
use super::fence_client::FenceClient;
use super::ports::Fence;
use super::watchdog::{LinuxOpener, Watchdog, WatchdogMode};
use crate::config::NodeConfig;
use crate::ha::{fence_step, FenceStep, Observation};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// The fence client for this node, or None when `fence.mode` is `off`.
pub fn fence_client(node: &NodeConfig) -> Option<Box<dyn Fence>> {
    node.fence.enabled().then(|| {
        let client = FenceClient::new(fence_socket(node), node.postgresql.data_dir.clone());
        Box::new(client) as Box<dyn Fence>
    })
}

/// The node's watchdog (real devices).
pub fn watchdog(node: &NodeConfig) -> Watchdog {
    Watchdog::new(&node.watchdog, Box::new(LinuxOpener))
}

/// Why a `required` watchdog cannot work, checked at start without opening the device
/// (opening it starts the countdown): the device file must exist.
pub fn watchdog_problem_at_start(node: &NodeConfig) -> Option<String> {
    let required = WatchdogMode::parse(&node.watchdog.mode) == WatchdogMode::Required;
    let missing = !std::path::Path::new(&node.watchdog.device).exists();
    (required && missing).then(|| {
        format!(
            "watchdog required but {} does not exist (load softdog or a hardware driver)",
            node.watchdog.device
        )
    })
}

/// `fence.socket`, or `patronus-fence-<name>.sock` beside the data directory.
pub fn fence_socket(node: &NodeConfig) -> PathBuf {
    if let Some(s) = &node.fence.socket {
        return PathBuf::from(s);
    }
    let dir = node
        .postgresql
        .data_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    dir.join(format!("patronus-fence-{}.sock", node.name))
}

/// How long until the fence must fire: the lease was renewed no earlier than `renewed_at`,
/// so it lives until at least `renewed_at + ttl`; the fence fires `safety_margin` before.
pub(crate) fn fence_within(now: Instant, renewed_at: Instant, ttl: u64, margin: i64) -> Duration {
    let margin = Duration::from_secs(u64::try_from(margin).unwrap_or(0));
    let ttl = Duration::from_secs(ttl);
    (renewed_at + ttl.saturating_sub(margin)).saturating_duration_since(now)
}

impl Driver {
    /// Applies this cycle's fence step; records (and puts into the observation) why the
    /// fence cannot guard a primary, if it cannot.
    pub(super) async fn guard(&mut self, obs: &mut Observation) {
        let step = fence_step(obs);
        let within = self.lock_renewed_at.map(|t| self.fence_deadline_from(t));
        let watchdog = match step {
            FenceStep::Feed => self.watchdog.feed(self.lock_timing.0),
            FenceStep::Keep => Ok(()),
            FenceStep::Disarm => {
                self.watchdog.disable();
                Ok(())
            }
        };
        let fence = match (self.fence.as_mut(), step, within) {
            (Some(f), FenceStep::Feed, Some(within)) => f.arm(within).await,
            (Some(f), FenceStep::Disarm, _) => match f.disarm().await {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::warn!("{e}");
                    Ok(())
                }
            },
            _ => Ok(()),
        };
        self.record_fencing(watchdog, fence, step == FenceStep::Feed);
        obs.node.fence_problem = self.fence_problem.clone();
    }

    /// Arms the watchdog and the fence before a promotion (the lease was granted this
    /// cycle). False when either cannot be armed: the caller must not promote.
    pub(super) async fn guard_promotion(&mut self, ctx: &CycleContext) -> bool {
        let within = self.fence_deadline_from(ctx.cycle_start);
        let watchdog = self.watchdog.feed(self.lock_timing.0);
        let fence = match self.fence.as_mut() {
            Some(f) => f.arm(within).await,
            None => Ok(()),
        };
        self.record_fencing(watchdog, fence, true);
        if let Some(why) = &self.fence_problem {
            tracing::error!("Not promoting self because {why}");
            return false;
        }
        true
    }

    /// Keeps what the watchdog and the fence answered when asked to arm: a failure to arm
    /// either is a problem (this member must not run a primary) until both work again.
    /// Keeping or disarming says nothing about that.
    fn record_fencing(
        &mut self,
        watchdog: Result<(), String>,
        fence: Result<(), String>,
        arming: bool,
    ) {
        if !arming {
            return;
        }
        self.watchdog_failed = watchdog.is_err();
        let problem = watchdog.and(fence).err();
        if let Some(p) = &problem {
            if self.fence_problem.as_ref() != Some(p) {
                tracing::error!("{p}");
            }
        }
        self.fence_problem = problem;
    }

    fn fence_deadline_from(&self, renewed_at: Instant) -> Duration {
        let node = self.sh.node();
        fence_within(
            Instant::now(),
            renewed_at,
            self.lock_timing.0,
            node.fence.safety_margin,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_fires_a_margin_before_the_lease_can_expire() {
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(fence_within(now, now, 10, 2), s(8));
        assert_eq!(fence_within(now + s(3), now, 10, 2), s(5));
        assert_eq!(fence_within(now + s(9), now, 10, 2), Duration::ZERO);
        assert_eq!(
            fence_within(now, now, 10, -5),
            s(10),
            "a negative margin counts as 0"
        );
        assert_eq!(fence_within(now, now, 1, 5), Duration::ZERO);
    }

    #[test]
    fn the_socket_sits_beside_the_data_directory() {
        let mut node = NodeConfig {
            name: "m1".into(),
            ..NodeConfig::default()
        };
        node.postgresql.data_dir = "/var/lib/postgresql/15/main".into();
        assert_eq!(
            fence_socket(&node),
            PathBuf::from("/var/lib/postgresql/15/patronus-fence-m1.sock")
        );
        node.fence.socket = Some("/run/fence.sock".into());
        assert_eq!(fence_socket(&node), PathBuf::from("/run/fence.sock"));
        node.fence.mode = "off".into();
        assert!(fence_client(&node).is_none());
    }
}
