//! Scheduled restarts (filters checked when due) and pending-restart tracking.

use super::driver::{now_ms, CycleContext, Driver};
use crate::postgres::PgRuntime;

impl Driver {
    /// The due time of a scheduled restart whose filters hold, for the observation. A
    /// restart whose postmaster restarted meanwhile, or whose filters fail when due, is
    /// dropped with a log line.
    pub(super) fn due_scheduled_restart(&mut self, rt: Option<&PgRuntime>) -> Option<u64> {
        let mut guard = self.sh.scheduled_restart.write().ok()?;
        let s = guard.as_ref()?;
        let start = rt.and_then(|r| r.postmaster_start_time.clone());
        if rt.is_some() && s.postmaster_start_time.is_some() && s.postmaster_start_time != start {
            tracing::info!(
                "scheduled restart cancelled: postgres restarted since it was scheduled"
            );
            *guard = None;
            return None;
        }
        if s.at_ms > now_ms() {
            return Some(s.at_ms);
        }
        let role = self.sh.status().role;
        let role_ok = s.role.as_deref().is_none_or(|r| match r {
            "primary" | "master" => role == "primary",
            other => role == other,
        });
        let version_ok = s.postgres_version.as_deref().is_none_or(|v| {
            let want = crate::api::actions::version_number(v).unwrap_or(0);
            rt.is_some_and(|r| i64::from(r.server_version) < want)
        });
        let pending_ok = !s.restart_pending || !self.pending_restart.1.is_empty();
        if role_ok && version_ok && pending_ok {
            Some(s.at_ms)
        } else {
            tracing::info!("scheduled restart skipped: restart conditions are not satisfied");
            *guard = None;
            None
        }
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
