//! The HA decision core lives in the `patronus-core` crate (no I/O dependency, so the compiler
//! keeps it pure); it is re-exported here so `patronus::ha::…` paths keep working. The
//! virtual-time simulator stays in this crate.

pub use patronus_core::ha::*;

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod sim_request_tests;
#[cfg(test)]
mod sim_sweep_tests;
#[cfg(test)]
mod sim_sync_tests;
#[cfg(test)]
mod sim_tests;
