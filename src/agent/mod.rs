//! The node agent: HA driver, executor, background tasks, and wiring.

pub mod callbacks;
pub mod config_notice;
pub mod config_role;
pub mod custom_bootstrap;
pub mod dcs_notice;
pub mod driver;
mod executor;
pub mod failsafe;
pub mod fence_client;
pub mod fencing;
pub mod handover;
pub mod history;
mod lock_budget;
pub mod member;
pub mod observe;
pub mod pg_port;
pub mod ports;
mod publish;
pub mod rejoin_tasks;
pub mod replica_methods;
pub mod reply;
mod restart_state;
pub mod run;
pub mod shared;
mod slots_exec;
pub mod sql_port;
pub mod standby_tasks;
mod sync_exec;
pub mod task_error;
pub mod tasks;
pub mod watchdog;

pub use driver::{AgentError, Driver};
pub use shared::{Command, NodeStatus, Shared};
