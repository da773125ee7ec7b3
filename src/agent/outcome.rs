//! A finished task's outcome as input of the next decisions: the failure itself
//! (`Observation::last_failure`) and the count of failed pg_rewind runs in a row.

use super::driver::Driver;
use super::tasks::TaskOutcome;
use crate::ha::{TaskFailure, TaskKind};

impl Driver {
    /// Records what the finished task `kind` left for the core.
    pub(super) fn record_outcome(
        &mut self,
        kind: TaskKind,
        result: &Result<TaskOutcome, tokio::task::JoinError>,
    ) {
        self.count_rewind_failures(kind, result.as_ref().is_ok_and(|o| o.ok));
        self.last_failure = match result {
            Ok(out) if out.ok => None,
            Ok(out) => Some(out.message.clone()),
            Err(e) => Some(format!("{} task panicked: {e}", kind.describe())),
        }
        .map(|message| TaskFailure {
            kind,
            message,
            at_ms: self.sh.clock.now_ms(),
        });
    }

    /// Counts failed pg_rewind runs in a row: the decision stops retrying a rewind that
    /// keeps failing.
    fn count_rewind_failures(&mut self, kind: TaskKind, ok: bool) {
        match (kind, ok) {
            (TaskKind::Rewind, false) => self.rewind_failures += 1,
            (TaskKind::Rewind | TaskKind::Reinitialize | TaskKind::CreateReplica, true) => {
                self.rewind_failures = 0
            }
            _ => {}
        }
    }
}
