//! Background tasks of the simulated members, stage by stage, as `agent/tasks.rs`,
//! `handover.rs` and `rejoin_tasks.rs` carry them out.

use super::{Agent, DcsLink, EventKind, Sim, Stage, PROMOTE_REASON};
use crate::dcs::HistoryLine;
use crate::ha::machine::{Input, TaskResult};
use crate::ha::observation::PgRole;

/// Poll interval of the hand-over while waiting for a candidate.
const HANDOVER_POLL_MS: u64 = 20;

/// Outcome of one hand-over poll.
pub(super) enum Poll {
    Wait(u64),
    Done(Vec<(u64, Stage)>),
}

impl Sim {
    /// Completes due task stages in time order, checking the invariant after each.
    pub(super) fn run_stages(&mut self, from: u64) {
        loop {
            let due = self.members.iter().enumerate().filter_map(|(i, m)| {
                let t = m.task.as_ref()?;
                (m.agent == Agent::Alive && t.due <= self.now).then_some((t.due, i))
            });
            let Some((due, i)) = due.min() else { return };
            let t = due.max(from);
            self.instant = t;
            self.apply_stage(i, t);
            self.check(t);
        }
    }

    pub(super) fn apply_stage(&mut self, i: usize, t: u64) {
        let Some(stage) = self.members[i].task.as_ref().and_then(|k| k.stages.front()) else {
            self.finish_task(i, t);
            return;
        };
        let mut replace: Option<Vec<(u64, Stage)>> = None;
        match stage.1.clone() {
            Stage::Stop { clean } => self.stop_pg(i, clean),
            Stage::ReleaseLock => self.release_lock(i),
            Stage::Start { primary, leader } => {
                if self.members[i].pg.start(primary, leader) {
                    self.event(i, EventKind::Started { primary });
                } else {
                    replace = Some(self.fail(i, "start failed: no data directory"));
                }
            }
            Stage::Promote => replace = self.promote(i),
            Stage::AwaitCandidate {
                candidates,
                deadline,
            } => match self.await_candidate(i, t, &candidates, deadline) {
                Poll::Wait(deadline) => {
                    if let Some(task) = self.members[i].task.as_mut() {
                        task.due = self.now + HANDOVER_POLL_MS;
                        if let Some(front) = task.stages.front_mut() {
                            front.1 = Stage::AwaitCandidate {
                                candidates,
                                deadline: Some(deadline),
                            };
                        }
                    }
                    return;
                }
                Poll::Done(stages) => replace = Some(stages),
            },
            Stage::Rewind { leader } | Stage::Clone { leader } => {
                let source = self.member(&leader).map(|m| m.pg.clone());
                match source.filter(|s| s.running) {
                    Some(s) => {
                        self.members[i].pg.copy_from(&s);
                        self.event(i, EventKind::Resynced { from: leader });
                    }
                    None => replace = Some(self.fail(i, "source of the data is not running")),
                }
            }
            Stage::Wipe => {
                let pg = &mut self.members[i].pg;
                pg.has_data = false;
                pg.running = false;
            }
        }
        let Some(task) = self.members[i].task.as_mut() else {
            return;
        };
        task.stages.pop_front();
        if let Some(r) = replace {
            task.stages = r.into();
        }
        match task.stages.front() {
            Some((d, _)) => task.due = t + d,
            None => self.finish_task(i, t),
        }
    }

    /// A stage could not be carried out: the task ends with this failure.
    pub(super) fn fail(&mut self, i: usize, why: &str) -> Vec<(u64, Stage)> {
        self.event(i, EventKind::TaskFailed(why.into()));
        if let Some(task) = self.members[i].task.as_mut() {
            task.failure = Some(why.into());
        }
        vec![]
    }

    /// Ends the task and feeds its outcome to the machine (as the driver's `reap_task`): a
    /// failure reaches the next decision as `Observation::last_failure`.
    pub(super) fn finish_task(&mut self, i: usize, t: u64) {
        let m = &mut self.members[i];
        let (Some(task), Some(kind)) = (m.task.take(), m.machine.task()) else {
            return;
        };
        let result = match task.failure {
            None => TaskResult::Succeeded(format!("{} finished", kind.describe())),
            Some(message) => TaskResult::Failed {
                message,
                fatal: false,
            },
        };
        let out = m.machine.step(Input::TaskFinished {
            kind,
            result,
            at_ms: t,
        });
        self.record_replies(i, out.replies);
        if out.cycle_due {
            self.wake(i, t);
        }
    }

    pub(super) fn stop_pg(&mut self, i: usize, clean: bool) {
        let pg = &mut self.members[i].pg;
        if !pg.running {
            return;
        }
        let was_primary = pg.role == PgRole::Primary;
        pg.stop(clean);
        let lsn = pg.lsn;
        if was_primary && clean {
            // The walsenders send everything up to the shutdown checkpoint before exiting.
            let mut last = self.members[i].pg.clone();
            last.running = true;
            let name = self.members[i].name.clone();
            for m in &mut self.members {
                if m.pg.following.as_deref() == Some(name.as_str()) {
                    m.pg.receive_from(&last, true);
                }
            }
        }
        let kind = EventKind::Stopped {
            was_primary,
            clean,
            lsn,
        };
        self.event(i, kind);
    }

    pub(super) fn promote(&mut self, i: usize) -> Option<Vec<(u64, Stage)>> {
        let pg = &mut self.members[i].pg;
        if !pg.running || pg.role != PgRole::Replica {
            return Some(self.fail(i, "promote failed: not running as a replica"));
        }
        if self.members[i].failing_promotes > 0 {
            self.members[i].failing_promotes -= 1;
            return Some(self.fail(i, "pg_ctl promote failed"));
        }
        let pg = &mut self.members[i].pg;
        pg.history.push(HistoryLine {
            timeline: pg.timeline,
            lsn: pg.lsn,
            reason: PROMOTE_REASON.into(),
            timestamp: None,
            new_leader: None,
        });
        pg.timeline += 1;
        pg.role = PgRole::Primary;
        pg.following = None;
        pg.control_state = "in production".into();
        let (timeline, lsn) = (pg.timeline, pg.lsn);
        self.event(i, EventKind::Promoted { timeline, lsn });
        None
    }

    /// `hand_over` after the clean stop: a candidate with WAL past the shutdown checkpoint
    /// → release the lock and follow it; none before the deadline → resume as primary.
    pub(super) fn await_candidate(
        &mut self,
        i: usize,
        t: u64,
        cands: &[String],
        dl: Option<u64>,
    ) -> Poll {
        let deadline = dl.unwrap_or(t + self.cfg.confirm_timeout_ms());
        let pg = &self.members[i].pg;
        let clean = pg.control_state == "shut down";
        let ckpt = pg.control_lsn;
        let chosen = cands.iter().find(|c| {
            self.member(c)
                .is_some_and(|m| m.agent == Agent::Alive && m.pg.running && m.pg.lsn > ckpt)
        });
        let up = self.members[i].link == DcsLink::Up;
        if let Some(chosen) = chosen.filter(|_| clean).cloned() {
            if up {
                self.dcs.set_optime(ckpt);
            }
            self.release_lock(i);
            let kind = EventKind::HandOverConfirmed {
                candidate: chosen.clone(),
                checkpoint: ckpt,
            };
            self.event(i, kind);
            let start = Stage::Start {
                primary: false,
                leader: Some(chosen),
            };
            return Poll::Done(vec![(self.cfg.start_ms, start)]);
        }
        if clean && t < deadline {
            return Poll::Wait(deadline);
        }
        self.event(i, EventKind::HandOverFailed);
        if up && self.dcs.clear_failover(None) {
            self.notify_watchers();
        }
        let start = Stage::Start {
            primary: true,
            leader: None,
        };
        Poll::Done(vec![(self.cfg.start_ms, start)])
    }
}
