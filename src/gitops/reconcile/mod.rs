//! `patronus reconcile`: the GitOps daemon (watch the repository and the DCS, apply,
//! detect drift, commit observed state back).

pub(crate) mod api;
mod apply_pass;
pub(crate) mod backoff;
pub(crate) mod board_detail;
mod cluster_pass;
mod commit_back;
pub(crate) mod controller;
pub(crate) mod daemon;
pub(crate) mod drift;
pub(crate) mod exec;
pub(crate) mod history_fill;
pub(crate) mod lock;
pub(crate) mod op_reclaim;
pub(crate) mod ops;
mod pass;
#[cfg(test)]
mod prop_tests;
pub(crate) mod reapply;
pub(crate) mod source;
pub(crate) mod status;
mod status_branch;
mod steps;
pub(crate) mod watch;
pub(crate) mod wave;
mod wave_exec;
mod webhook;
