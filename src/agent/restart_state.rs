//! Scheduled restarts (filters checked when due) and pending-restart tracking.

use super::driver::{CycleContext, Driver};
use crate::ha::restart::{scheduled_step, RestartFacts, ScheduledStep};
use crate::postgres::PgRuntime;
use serde_json::{Map, Value};

/// The pending-restart reasons in force for the postmaster observed now. Reasons are computed
/// for one postmaster (`computed_for`, its start time): once another postmaster runs
/// (`current` differs) they are out of date, since a start applies every parameter in the
/// files, and nothing is pending until they are computed again (Patroni clears the flag when
/// PostgreSQL starts). When no postmaster was observed this cycle (stopped, or not answering
/// queries) the last reasons stay, as Patroni keeps them until the next start.
pub(super) fn pending_in_force(
    computed_for: Option<&str>,
    reasons: &Map<String, Value>,
    current: Option<&str>,
) -> Map<String, Value> {
    match current {
        Some(now) if computed_for != Some(now) => Map::new(),
        _ => reasons.clone(),
    }
}

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
            pending_restart: !self.pending_now(rt).is_empty(),
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

    /// The pending-restart reasons to publish and to filter restarts on this cycle, see
    /// [`pending_in_force`].
    pub(super) fn pending_now(&self, rt: Option<&PgRuntime>) -> Map<String, Value> {
        let (computed_for, reasons) = &self.pending_restart;
        let current = rt.and_then(|r| r.postmaster_start_time.as_deref());
        pending_in_force(computed_for.as_deref(), reasons, current)
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
            // Retried next cycle (the start time recorded is still the old one); meanwhile
            // the reasons of an older postmaster are not published (`pending_now`).
            Err(e) => tracing::debug!("cannot read pg_settings: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pending_in_force;
    use serde_json::{json, Map, Value};

    fn reasons() -> Map<String, Value> {
        let v = json!({"shared_buffers": {"old_value": "16MB", "new_value": "24MB"}});
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reasons_hold_only_for_the_postmaster_they_were_computed_for() {
        let r = reasons();
        let t1 = Some("2026-11-30 10:00:00.000001+00:00");
        let t2 = Some("2026-11-30 10:05:00.000001+00:00");
        assert_eq!(pending_in_force(t1, &r, t1), r, "same postmaster");
        // The postmaster restarted (a demotion, a restart) and pg_settings was not read again
        // yet: what it reported for the old one is not published.
        assert!(pending_in_force(t1, &r, t2).is_empty());
        assert!(pending_in_force(None, &r, t2).is_empty());
        // Not observed this cycle: the last reasons stay until a start is seen.
        assert_eq!(pending_in_force(t1, &r, None), r);
    }
}
