//! Scheduled restarts (filters checked when due) and pending-restart tracking.

use super::driver::{CycleContext, Driver};
use crate::ha::restart::{scheduled_step, RestartFacts, ScheduledStep};
use crate::postgres::PgRuntime;

impl Driver {
    /// The due time of a scheduled restart whose filters hold, for the observation. The
    /// decision is the pure [`scheduled_step`]; a restart whose postmaster restarted
    /// meanwhile, or whose filters fail when due, is dropped here with a log line.
    pub(super) fn due_scheduled_restart(&mut self, rt: Option<&PgRuntime>) -> Option<u64> {
        let mut guard = self.sh.scheduled_restart.write().ok()?;
        let s = guard.as_ref()?;
        let role = self.sh.status().role;
        let facts = RestartFacts {
            role: &role,
            server_version: rt.map(|r| r.server_version),
            pending_restart: !self.pending_restart.1.is_empty(),
        };
        let below_version = s
            .postgres_version
            .as_deref()
            .map(|v| crate::postgres::version::version_number(v).unwrap_or(0));
        let start = rt.map(|r| r.postmaster_start_time.as_deref());
        let step = scheduled_step(s, self.sh.clock.now_ms(), start, below_version, &facts);
        match step {
            ScheduledStep::Cancelled => tracing::info!(
                "scheduled restart cancelled: postgres restarted since it was scheduled"
            ),
            ScheduledStep::Skipped => {
                tracing::info!("scheduled restart skipped: restart conditions are not satisfied")
            }
            ScheduledStep::Wait(_) | ScheduledStep::Due(_) => {}
        }
        if step.drops() {
            *guard = None;
        }
        step.at_ms()
    }

    /// Recomputes `pending_restart` after a config change or a postmaster restart.
    pub(super) async fn update_pending_restart(&mut self, ctx: &CycleContext) {
        let Some(rt) = ctx.runtime.as_ref() else {
            return;
        };
        let start = rt.postmaster_start_time.clone();
        if !self.recheck_pending && start == self.pending_restart.0 {
            return;
        }
        let desired = self.sh.pg.desired_parameters(&ctx.dynamic.parameters);
        match self.sh.sql.settings().await {
            Ok(rows) => {
                let reasons = crate::postgres::pending::pending_restart(&desired, &rows);
                if !reasons.is_empty() && reasons != self.pending_restart.1 {
                    let names: Vec<&String> = reasons.keys().collect();
                    tracing::info!("pending restart for parameters: {names:?}");
                }
                self.pending_restart = (start, reasons);
                self.recheck_pending = false;
            }
            Err(e) => tracing::debug!("cannot read pg_settings: {e}"),
        }
    }
}
