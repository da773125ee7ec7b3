//! The HA decision core lives in the `patronus-core` crate (no I/O dependency, so the compiler
//! keeps it pure); it is re-exported here so `patronus::ha::…` paths keep working. The
//! simulator that runs the real agent on it is `crate::sim` (tests only).

pub use patronus_core::ha::*;
