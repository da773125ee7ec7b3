//! Configuration: Patroni's node YAML file, `PATRONI_*` environment overrides, the
//! dynamic (DCS) configuration, and JSON merge helpers.
//!
//! The pieces the HA core reads (dynamic configuration, known keys, tags, standby cluster,
//! timing) live in the pure `patronus-core` crate and are re-exported here.

pub(crate) mod env;
pub(crate) mod error;
pub(crate) mod key_status;
pub(crate) mod lifecycle_checks;
pub(crate) mod load;
pub(crate) mod merge;
pub(crate) mod node;
pub(crate) mod pg_ssl;
pub(crate) mod reload;
pub(crate) mod validate;
pub mod yaml;

pub use patronus_core::config::{
    dynamic, dynamic_keys, dynamic_roles, dynamic_validate, known_keys, standby, tags, timing,
};

pub use dynamic::{DynamicConfig, SyncMode};
pub use dynamic_validate::{validate_dynamic, validate_dynamic_with_min_ttl};
pub use env::apply_env_overrides;
pub use error::{ConfigError, ConfigWarning};
pub use key_status::{dynamic_key_findings, node_key_findings, KeyFindings};
pub use load::{load_node_config, parse_node_config};
pub use merge::{merge_patch, set_path};
pub use node::{
    Authentication, BasicAuth, BootstrapConfig, Credentials, EtcdConfig, LogConfig, NodeConfig,
    PostgresqlConfig, RestApiConfig, WatchdogConfig,
};
pub use pg_ssl::{Negotiated, PgSsl, SslMode};
pub use tags::Tags;

#[cfg(test)]
mod prop_tests;

/// The lowest `ttl` accepted: `PATRONUS_MIN_TTL` when set to a number (fast tests), else
/// Patroni's 20 ([`dynamic_keys::DEFAULT_MIN_TTL`]).
pub fn min_ttl_from_env() -> u64 {
    std::env::var("PATRONUS_MIN_TTL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(dynamic_keys::DEFAULT_MIN_TTL)
}
