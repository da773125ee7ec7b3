//! `patronus reconcile`: the GitOps daemon (watch the repository and the DCS, apply,
//! detect drift, commit observed state back).

pub mod api;
mod apply_pass;
pub mod backoff;
pub mod board_detail;
mod cluster_pass;
mod commit_back;
pub mod controller;
pub mod daemon;
pub mod drift;
pub mod exec;
pub mod history_fill;
pub mod lock;
pub mod op_reclaim;
pub mod ops;
mod pass;
#[cfg(test)]
mod prop_tests;
pub mod reapply;
pub mod source;
pub mod status;
mod status_branch;
mod steps;
pub mod watch;
pub mod wave;
mod wave_exec;
mod webhook;
