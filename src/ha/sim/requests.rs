//! Operator requests (`POST /restart`, `POST /reinitialize`) in the simulator: handed to the
//! member's real [`crate::ha::AgentMachine`], which refuses, declines or carries them out and
//! answers, as the driver's request channel does.

use super::Sim;
use crate::ha::machine::{Effect, Input, RequestId};
use crate::ha::reply::Reply;
use crate::ha::Request;

/// The answer a request got, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReply {
    /// Virtual time of the answer.
    pub at: u64,
    /// The member asked.
    pub member: String,
    /// What [`Sim::request`] returned for it.
    pub id: RequestId,
    /// The answer.
    pub reply: Reply,
}

/// Requests sent and answers received.
#[derive(Debug, Clone, Default)]
pub(super) struct Requests {
    next: RequestId,
    answers: Vec<SimReply>,
}

impl Sim {
    /// Sends an operator request to `name` (answered with `reply_on_start: false`, as
    /// `patronictl restart`); its id names the answer in [`Sim::replies`].
    pub fn request(&mut self, name: &str, request: Request) -> RequestId {
        let id = self.requests.next;
        self.requests.next += 1;
        let Some(i) = self.members.iter().position(|m| m.name == name) else {
            return id;
        };
        let out = self.members[i].machine.step(Input::Request {
            id,
            request,
            reply_on_start: false,
        });
        if out
            .effects
            .iter()
            .any(|e| matches!(e, Effect::CancelTask(_)))
        {
            self.members[i].task = None;
        }
        self.record_replies(i, out.replies);
        if out.cycle_due {
            self.wake(i, self.now);
        }
        id
    }

    /// Every answer so far, in order.
    pub fn replies(&self) -> &[SimReply] {
        &self.requests.answers
    }

    /// Records the machine's answers of member `i`.
    pub(super) fn record_replies(&mut self, i: usize, replies: Vec<(RequestId, Reply)>) {
        for (id, reply) in replies {
            self.requests.answers.push(SimReply {
                at: self.instant,
                member: self.members[i].name.clone(),
                id,
                reply,
            });
        }
    }
}
