//! The agent as a state machine without I/O: [`AgentMachine::step`] takes one [`Input`] (an
//! observation, a task that started or finished, an operator request, a tick) and returns an
//! [`Output`] (effects to run, replies to send, the log line, the next wake-up).
//!
//! It owns the agent's own state between cycles: the background task running (kind, start),
//! the operator request waiting for the next decision and the one a task carries out, the
//! last failed task and the count of failed pg_rewind runs. The tokio driver
//! (`agent/driver.rs`) and the simulator (`ha/sim`) wait, observe, run the effects through
//! their ports and feed what happened back as inputs: a failed effect reaches the core as
//! [`Input::TaskFinished`] with [`TaskResult::Failed`] and shows up in the next
//! [`Observation::last_failure`].
//!
//! No async, no clock, no channels: time comes in with the inputs.

use super::reply::{Reply, RequestError};
use super::{decide, Action, Observation, Request, TaskFailure, TaskKind};
use crate::config::timing::ms_after;

/// Names an operator request across the machine's boundary; the driver keeps the request's
/// reply channel under it.
pub type RequestId = u64;

/// What happened outside the machine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A cycle's observation. The machine fills in what it owns (task, request, last failure,
    /// failed rewinds) before it decides.
    Observed(Box<Observation>),
    /// An effect started a background task at `at_ms` (a task still running is replaced:
    /// the driver cancelled it).
    TaskStarted {
        /// The task.
        kind: TaskKind,
        /// When it started (ms since the epoch).
        at_ms: u64,
    },
    /// The background task ended at `at_ms`.
    TaskFinished {
        /// The task.
        kind: TaskKind,
        /// How it ended.
        result: TaskResult,
        /// When it ended (ms since the epoch).
        at_ms: u64,
    },
    /// An operator request (`POST /restart`, `POST /reinitialize`).
    Request {
        /// Its name for the reply.
        id: RequestId,
        /// What is asked.
        request: Request,
        /// Answer as soon as the action starts (after the cycle that decided it has
        /// published) instead of when it ends.
        reply_on_start: bool,
    },
    /// Time passed: is a cycle due?
    Tick {
        /// Now (ms since the epoch).
        now_ms: u64,
    },
}

/// How a background task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskResult {
    /// It did its work; its log line.
    Succeeded(String),
    /// It failed; its log line. `fatal`: the agent must stop (a failed bootstrap).
    Failed {
        /// Why (the log line).
        message: String,
        /// The agent must stop.
        fatal: bool,
    },
}

impl TaskResult {
    /// The task's log line.
    pub fn message(&self) -> &str {
        match self {
            TaskResult::Succeeded(m) | TaskResult::Failed { message: m, .. } => m,
        }
    }

    /// True when the task did its work.
    pub fn is_ok(&self) -> bool {
        matches!(self, TaskResult::Succeeded(_))
    }
}

/// What the machine asks its runner to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Carry out one action of the decision (in order).
    Act(Action),
    /// Abort the running background task (a forced reinitialize).
    CancelTask(TaskKind),
    /// The agent must stop with this reason (a fatal task failure).
    Stop(String),
}

/// The machine's answer to one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Effects to run, in order.
    pub effects: Vec<Effect>,
    /// Replies to operator requests. Replies to an observation are sent once the cycle has
    /// published, so that a client polling `/patroni` after its reply sees the action.
    pub replies: Vec<(RequestId, Reply)>,
    /// The decision's log line (observations only).
    pub message: Option<String>,
    /// A wake-up earlier than `loop_wait` that the decision asked for (ms since the epoch),
    /// e.g. a scheduled switchover. Without one the loop sleeps `loop_wait` after the cycle.
    pub wake_at_ms: Option<u64>,
    /// A cycle is due now (a task finished, a request arrived, the wake-up time passed).
    pub cycle_due: bool,
}

/// The running background task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RunningTask {
    kind: TaskKind,
    started_ms: u64,
}

/// A request waiting for the next decision.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    id: RequestId,
    request: Request,
    reply_on_start: bool,
}

/// The agent's state between cycles; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct AgentMachine {
    task: Option<RunningTask>,
    pending: Option<Pending>,
    /// The request the running (or next) task carries out; answered when it ends.
    task_request: Option<RequestId>,
    last_failure: Option<TaskFailure>,
    rewind_failures: u32,
    /// When the next cycle is due at the latest.
    next_cycle_ms: Option<u64>,
    /// Something happened that the next cycle must see at once.
    woken: bool,
}

impl AgentMachine {
    /// A machine with no task, no request and no failure.
    pub fn new() -> AgentMachine {
        AgentMachine::default()
    }

    /// The running background task.
    pub fn task(&self) -> Option<TaskKind> {
        self.task.map(|t| t.kind)
    }

    /// When the running task started.
    pub fn task_started_ms(&self) -> Option<u64> {
        self.task.map(|t| t.started_ms)
    }

    /// The last finished task, when it failed.
    pub fn last_failure(&self) -> Option<&TaskFailure> {
        self.last_failure.as_ref()
    }

    /// pg_rewind runs that failed in a row.
    pub fn rewind_failures(&self) -> u32 {
        self.rewind_failures
    }

    /// Takes one input; see [`Input`] and [`Output`].
    pub fn step(&mut self, input: Input) -> Output {
        match input {
            Input::Observed(obs) => self.observed(*obs),
            Input::TaskStarted { kind, at_ms } => {
                self.task = Some(RunningTask {
                    kind,
                    started_ms: at_ms,
                });
                Output::default()
            }
            Input::TaskFinished {
                kind,
                result,
                at_ms,
            } => self.task_finished(kind, result, at_ms),
            Input::Request {
                id,
                request,
                reply_on_start,
            } => self.request(id, request, reply_on_start),
            Input::Tick { now_ms } => Output {
                cycle_due: self.woken || self.next_cycle_ms.is_none_or(|at| at <= now_ms),
                ..Output::default()
            },
        }
    }

    /// Fills in what the machine owns, decides, and settles the waiting request.
    fn observed(&mut self, mut obs: Observation) -> Output {
        obs.task = self.task();
        obs.task_started_ms = self.task_started_ms();
        obs.request = self.pending.as_ref().map(|p| p.request.clone());
        obs.last_failure = self.last_failure.clone();
        obs.pg.rewind_failures = self.rewind_failures;
        let decision = decide(&obs);
        let mut replies = vec![];
        if let Some(p) = self.pending.take() {
            let acted = decision
                .actions
                .iter()
                .any(|a| matches!(a, Action::Restart | Action::Reinitialize { .. }));
            if acted && p.reply_on_start {
                replies.push((p.id, Ok(decision.message.clone())));
            } else if acted {
                self.task_request = Some(p.id);
            } else {
                replies.push((p.id, Err(RequestError::Declined(decision.message.clone()))));
            }
        }
        let latest = ms_after(obs.now_ms, obs.config.loop_wait.max(1));
        let next = decision.wake_at_ms.map_or(latest, |at| at.min(latest));
        self.next_cycle_ms = Some(next);
        self.woken = false;
        Output {
            effects: decision.actions.into_iter().map(Effect::Act).collect(),
            replies,
            message: Some(decision.message),
            wake_at_ms: decision.wake_at_ms,
            cycle_due: false,
        }
    }

    /// Records the task's outcome for the next decisions and answers the request it carried
    /// out.
    fn task_finished(&mut self, kind: TaskKind, result: TaskResult, at_ms: u64) -> Output {
        self.task = None;
        self.woken = true;
        self.count_rewind_failures(kind, result.is_ok());
        let mut out = Output {
            cycle_due: true,
            ..Output::default()
        };
        self.last_failure = match &result {
            TaskResult::Succeeded(_) => None,
            TaskResult::Failed { message, .. } => Some(TaskFailure {
                kind,
                message: message.clone(),
                at_ms,
            }),
        };
        if let Some(id) = self.task_request.take() {
            let answer = match &result {
                TaskResult::Succeeded(m) => Ok(m.clone()),
                TaskResult::Failed { message, .. } => Err(RequestError::Failed(message.clone())),
            };
            out.replies.push((id, answer));
        }
        if let TaskResult::Failed {
            message,
            fatal: true,
        } = result
        {
            out.effects.push(Effect::Stop(message));
        }
        out
    }

    /// Counts failed pg_rewind runs in a row: the decision stops retrying a rewind that keeps
    /// failing. A rewind that works or a fresh clone resets the count.
    fn count_rewind_failures(&mut self, kind: TaskKind, ok: bool) {
        match (kind, ok) {
            (TaskKind::Rewind, false) => self.rewind_failures += 1,
            (TaskKind::Rewind | TaskKind::Reinitialize | TaskKind::CreateReplica, true) => {
                self.rewind_failures = 0
            }
            _ => {}
        }
    }

    /// Takes an operator request for the next decision; refuses it at once while a task runs
    /// (a forced reinitialize cancels the task instead) or another request waits.
    fn request(&mut self, id: RequestId, request: Request, reply_on_start: bool) -> Output {
        let force = matches!(request, Request::Reinitialize { force: true, .. });
        let mut out = Output::default();
        if let Some(task) = self.task {
            if !force {
                out.replies
                    .push((id, Err(RequestError::Busy(task.kind.describe()))));
                return out;
            }
            self.task = None;
            out.effects.push(Effect::CancelTask(task.kind));
            if let Some(old) = self.task_request.take() {
                out.replies.push((old, Err(RequestError::Cancelled)));
            }
        }
        if self.pending.is_some() {
            out.replies.push((id, Err(RequestError::AnotherRequest)));
        } else {
            self.pending = Some(Pending {
                id,
                request,
                reply_on_start,
            });
            self.woken = true;
            out.cycle_due = true;
        }
        out
    }
}
