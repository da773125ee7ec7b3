//! Command-line interface: one file per command (or small group).

pub mod agent_cmd;
pub mod ctl;
pub mod demo;
pub mod exit_code;
pub mod gitops_cmd;
pub mod reconcile_cmd;
