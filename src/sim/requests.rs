//! Operator requests (`POST /restart`, `POST /reinitialize`) in the simulator: sent on the
//! member's real request channel, as the REST handler sends them; its agent machine
//! refuses, declines or carries them out and answers.

use super::Sim;
use crate::agent::Command;
use crate::ha::machine::RequestId;
use crate::ha::reply::{Reply, RequestError};
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

/// Names the requests.
#[derive(Debug, Default)]
pub(super) struct Requests {
    next: RequestId,
}

impl Sim {
    /// Sends an operator request to `name` (answered when the action ends,
    /// `reply_on_start: false`, as `patronictl restart`); its id names the answer in
    /// [`Sim::replies`]. The agent takes it at once when its loop is waiting.
    pub fn request(&mut self, name: &str, request: Request) -> RequestId {
        let id = self.requests.next;
        self.requests.next += 1;
        let Some(i) = self.idx(name) else { return id };
        let Some(sh) = self.agents[i].as_ref().map(|a| a.shared.clone()) else {
            return id;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let command = Command {
            request,
            reply,
            reply_on_start: false,
        };
        if sh.commands.send(command).is_err() {
            return id;
        }
        let world = self.world.clone();
        let member = name.to_string();
        let _context = self.rt.enter();
        tokio::spawn(async move {
            let reply = answer.await.unwrap_or(Err(RequestError::Cancelled));
            let at = world.now();
            let answer = SimReply {
                at,
                member,
                id,
                reply,
            };
            world.lock().replies.push(answer);
        });
        drop(_context);
        // Let the agent take the request without moving the clock.
        self.local.block_on(&self.rt, async {
            for _ in 0..64 {
                tokio::task::yield_now().await;
            }
        });
        self.refresh();
        id
    }

    /// Every answer so far, in order.
    pub fn replies(&self) -> &[SimReply] {
        &self.view.replies
    }
}
