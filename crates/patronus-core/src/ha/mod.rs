//! The pure HA decision core: no tokio, no filesystem, no network (the crate has no such
//! dependency, so the compiler refuses them).

pub mod action;
pub mod adopt;
pub mod decide;
pub mod eligibility;
pub mod failsafe;
pub mod fencing;
pub mod handover;
pub mod observation;
#[cfg(test)]
mod prop_tests;
pub mod quorum;
pub mod quorum_step;
#[cfg(test)]
mod quorum_tests;
pub mod rejoin;
pub mod restart;
pub mod slots;
pub mod standby;
pub mod switchover;
pub mod sync;
#[cfg(test)]
mod tests;
pub mod upstream;
pub mod vocab;

pub use action::{Action, Decision, DemoteMode};
pub use decide::decide;
pub use fencing::{fence_step, FenceStep};
pub use observation::{
    DataDir, FailsafeCall, FailsafeFacts, FailsafeOutcome, LockState, NodeFacts, Observation,
    PeerStatus, PgObservation, PgRole, Request, TaskFailure, TaskKind,
};
pub use vocab::{ControlState, StopMode};
