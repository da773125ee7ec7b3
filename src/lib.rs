//! patronus: PostgreSQL high availability compatible with Patroni, plus a GitOps reconciler.

pub mod agent;
pub mod api;
pub mod cli;
pub mod config;
pub mod dcs;
pub mod fence;
pub mod gitops;
pub mod ha;
pub mod logging;
pub mod postgres;
#[cfg(test)]
#[path = "../crates/patronus-core/src/prop_support.rs"]
mod prop_support;
pub(crate) mod secrets;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod snapshot_tests;
pub mod tls;
pub(crate) mod wire;
