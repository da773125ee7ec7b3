//! The node agent: HA driver, executor, background tasks, and wiring.

pub(crate) mod callbacks;
pub(crate) mod config_notice;
pub(crate) mod config_role;
pub(crate) mod custom_bootstrap;
pub(crate) mod dcs_notice;
pub(crate) mod driver;
mod executor;
pub(crate) mod failsafe;
pub(crate) mod fence_client;
pub(crate) mod fencing;
pub(crate) mod handover;
pub(crate) mod history;
mod lock_budget;
pub(crate) mod member;
pub(crate) mod observe;
pub(crate) mod pg_port;
pub(crate) mod ports;
mod publish;
pub(crate) mod rejoin_tasks;
pub(crate) mod replica_methods;
pub(crate) mod reply;
mod restart_state;
pub mod run;
pub(crate) mod shared;
mod slots_exec;
pub(crate) mod sql_port;
pub(crate) mod standby_tasks;
mod sync_exec;
pub(crate) mod task_error;
pub(crate) mod tasks;
pub(crate) mod watchdog;

pub use driver::{AgentError, Driver};
pub use shared::{Command, NodeStatus, Shared};
