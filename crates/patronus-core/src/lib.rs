//! patronus-core: the pure HA decision core of patronus and exactly the model it reads.
//!
//! `decide(&Observation) -> Decision` and its rule modules ([`ha`]), the Patroni DCS data
//! model ([`dcs`]: keys, the cluster view, member JSON) and the configuration pieces the rules
//! read ([`config`]: dynamic configuration, tags, standby cluster, timing). This crate has no
//! runtime, network, filesystem or process dependency, so I/O here does not compile; the main
//! `patronus` crate re-exports every module at its old path (`patronus::ha::decide`, ...).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod dcs;
pub mod ha;
#[cfg(test)]
mod prop_support;
