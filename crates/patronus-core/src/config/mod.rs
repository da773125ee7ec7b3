//! The configuration the HA rules read: the dynamic (DCS) configuration and its validation,
//! known Patroni keys, tags, the standby cluster section and timing helpers.

pub mod dynamic;
pub mod dynamic_keys;
pub mod dynamic_roles;
pub mod dynamic_validate;
pub mod known_keys;
pub mod standby;
pub mod tags;
pub mod timing;
pub mod yaml;

pub use dynamic::{DynamicConfig, SyncMode};
pub use dynamic_validate::{validate_dynamic, validate_dynamic_with_min_ttl};
pub use tags::Tags;

#[cfg(test)]
mod dynamic_prop_tests;
