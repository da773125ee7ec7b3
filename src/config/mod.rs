//! Configuration: Patroni's node YAML file, `PATRONI_*` environment overrides, the
//! dynamic (DCS) configuration, and JSON merge helpers.

pub mod dynamic;
pub mod dynamic_roles;
pub mod dynamic_validate;
pub mod env;
pub mod error;
pub mod key_status;
pub mod known_keys;
pub mod lifecycle_checks;
pub mod load;
pub mod merge;
pub mod node;
pub mod pg_ssl;
pub mod reload;
pub mod standby;
pub mod tags;
pub mod timing;
pub mod validate;
pub mod yaml;

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
mod dynamic_prop_tests;
#[cfg(test)]
mod prop_tests;
