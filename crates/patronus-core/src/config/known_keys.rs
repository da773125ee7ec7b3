//! The one table of the keys Patroni knows, each with what patronus does with it
//! ([`KeyStatus`]): used, accepted but ignored (a warning), or refused because running
//! without it would be unsafe (an error). The table also drives the warnings about
//! unknown (misspelt) keys.
//!
//! Only sections listed in [`NODE_SECTIONS`] are checked for unknown keys; keys whose
//! value is an open map (`postgresql.parameters`, `tags`, `bootstrap.dcs`, `ctl`, ...)
//! are known but never checked for unknown keys. [`super::key_status`] walks the
//! tables and turns unknown keys and statuses into warnings and problems.

use super::dynamic_keys::DYNAMIC_KEYS;
use super::tags::parse_bool;
use serde_json::{Map, Value};
use std::sync::LazyLock;
use KeyStatus::{ByValue, IfTrue, Ignored, Unsafe, Used, Warning};

/// What patronus does with a key Patroni knows.
#[derive(Debug, Clone, Copy)]
pub enum KeyStatus {
    /// Acted on (or a section whose own keys are classified one by one).
    Used,
    /// Accepted but not acted on: a warning `not implemented yet and is ignored (<note>)`.
    Ignored(&'static str),
    /// Accepted with this warning text (e.g. keys Patroni itself removed).
    Warning(&'static str),
    /// Running without what the key asks for would be unsafe: the configuration is
    /// refused with this reason.
    Unsafe(&'static str),
    /// The given status when the value is true (`true`, `on`, `yes`, ...), else used.
    IfTrue(&'static KeyStatus),
    /// The status depends on the value (second argument) and its section (first).
    ByValue(fn(&Map<String, Value>, &Value) -> KeyStatus),
}

/// A key name and its status.
pub type Key = (&'static str, KeyStatus);

const RUSTLS_CIPHERS: &str = "rustls cannot take an OpenSSL cipher string; its own safe \
    defaults (TLS 1.2 and 1.3, forward-secret AEAD suites) apply";
const GSS_REQUIRE: &str = "'require' cannot be honoured: the agent's own connections never use \
    GSSAPI encryption (libpq tools would); remove it";
const OTHER_DCS: &str = "DCS not supported by patronus (only etcd3); section ignored";
const NOT_PUBLISHED: &str = "not published";
const ROLE_SPECIFIC: &str = "role-specific settings apply from the dynamic configuration only";
const PLAIN_LOGS: &str = "patronus has no Python logging machinery for it";
const REST_SERVER: &str = "the REST server has fixed settings";

/// Top-level keys of a node file.
#[rustfmt::skip]
pub const TOP_LEVEL: &[Key] = &[
    ("name", Used),
    ("scope", Used),
    ("namespace", Used),
    ("restapi", Used),
    ("etcd3", Used),
    ("etcd", Used),
    ("bootstrap", Used),
    ("postgresql", Used),
    ("tags", Used),
    ("log", Used),
    ("watchdog", Used),
    ("fence", Used),
    ("ctl", Used),
    ("thread_pool_size", Ignored("the agent has a fixed thread pool")),
    ("citus", Ignored("Citus clusters are not supported")),
    ("consul", Warning(OTHER_DCS)),
    ("zookeeper", Warning(OTHER_DCS)),
    ("exhibitor", Warning(OTHER_DCS)),
    ("kubernetes", Warning(OTHER_DCS)),
    ("raft", Warning(OTHER_DCS)),
];

/// Keys of `restapi`.
#[rustfmt::skip]
pub(crate) const RESTAPI: &[Key] = &[
    ("listen", Used),
    ("connect_address", Used),
    ("proxy_address", Ignored(NOT_PUBLISHED)),
    ("authentication", Used),
    ("certfile", Used),
    ("keyfile", Used),
    ("keyfile_password", Used),
    ("cafile", Used),
    ("ciphers", Ignored(RUSTLS_CIPHERS)),
    ("verify_client", Used),
    ("allowlist", Used),
    ("allowlist_include_members", Used),
    ("http_extra_headers", Ignored("no extra headers are sent")),
    ("https_extra_headers", Ignored("no extra headers are sent")),
    ("request_queue_size", Ignored(REST_SERVER)),
    ("server_tokens", Ignored(REST_SERVER)),
];

/// Keys of `restapi.authentication`.
#[rustfmt::skip]
pub(crate) const BASIC_AUTH: &[Key] = &[("username", Used), ("password", Used)];

/// Keys of `etcd3` (and legacy `etcd`).
#[rustfmt::skip]
pub(crate) const ETCD: &[Key] = &[
    ("host", Used),
    ("hosts", Used),
    ("url", Used),
    ("urls", Used),
    ("port", Used),
    ("protocol", Used),
    ("username", Used),
    ("password", Used),
    ("cacert", Used),
    ("cert", Used),
    ("key", Used),
    ("key_password", Used),
    ("use_proxies", IfTrue(&Ignored("only the listed endpoints are used"))),
    ("srv", Ignored("only the listed endpoints are used")),
    ("srv_suffix", Ignored("only the listed endpoints are used")),
    ("proxy", Ignored("only the listed endpoints are used")),
    ("retry_timeout", Ignored("the dynamic retry_timeout applies")),
];

/// Keys of `bootstrap` (plus the section named by `bootstrap.method`).
#[rustfmt::skip]
pub(crate) const BOOTSTRAP: &[Key] = &[
    ("dcs", Used),
    ("method", Used),
    ("initdb", Used),
    ("pg_hba", Used),
    ("post_bootstrap", Used),
    ("post_init", Used),
    (
        "users",
        Warning("removed in Patroni 4 and ignored: create users in post_bootstrap instead"),
    ),
];

/// Keys of `postgresql` (plus sections named in `create_replica_methods`).
#[rustfmt::skip]
pub(crate) const POSTGRESQL: &[Key] = &[
    ("listen", Used),
    ("connect_address", Used),
    ("proxy_address", Ignored(NOT_PUBLISHED)),
    ("data_dir", Used),
    ("config_dir", Used),
    ("bin_dir", Used),
    ("bin_name", Ignored("binaries are run by their standard names")),
    ("pgpass", Used),
    ("authentication", Used),
    ("parameters", Used),
    ("parameters_primary", Ignored(ROLE_SPECIFIC)),
    ("parameters_replica", Ignored(ROLE_SPECIFIC)),
    ("parameters_standby_leader", Ignored(ROLE_SPECIFIC)),
    ("pg_hba", Used),
    ("pg_hba_primary", Ignored(ROLE_SPECIFIC)),
    ("pg_hba_replica", Ignored(ROLE_SPECIFIC)),
    ("pg_hba_standby_leader", Ignored(ROLE_SPECIFIC)),
    ("pg_ident", Used),
    ("pg_ident_primary", Ignored(ROLE_SPECIFIC)),
    ("pg_ident_replica", Ignored(ROLE_SPECIFIC)),
    ("pg_ident_standby_leader", Ignored(ROLE_SPECIFIC)),
    ("use_pg_rewind", Used),
    ("use_slots", Ignored("use_slots of the dynamic configuration applies")),
    ("pg_ctl_timeout", Used),
    ("remove_data_directory_on_rewind_failure", Used),
    ("remove_data_directory_on_diverged_timelines", ByValue(diverged_timelines)),
    ("callbacks", Used),
    ("create_replica_methods", Used),
    ("basebackup", Used),
    ("custom_conf", Ignored("postgresql.conf is generated")),
    ("config_base_name", Ignored("postgresql.conf is generated")),
    ("recovery_conf", Used),
    ("use_unix_socket", Used),
    ("use_unix_socket_repl", Used),
    ("rewind", Ignored("pg_rewind runs with fixed options")),
    ("pre_promote", Used),
    ("before_stop", Used),
    ("krbsrvname", Ignored("Kerberos is not supported")),
];

/// Keys of `postgresql.authentication`.
#[rustfmt::skip]
pub(crate) const AUTHENTICATION: &[Key] = &[
    ("superuser", Used),
    ("replication", Used),
    ("rewind", Used),
];

const SSL_NEGOTIATION: &str = "PostgreSQL 17's direct TLS negotiation is not offered: \
    connections negotiate TLS the classic way";

/// Keys of one role under `postgresql.authentication`.
#[rustfmt::skip]
pub(crate) const CREDENTIALS: &[Key] = &[
    ("username", Used),
    ("password", Used),
    ("sslmode", Used),
    ("sslkey", Used),
    ("sslpassword", Used),
    ("sslcert", Used),
    ("sslrootcert", Used),
    ("sslcrl", Used),
    ("sslcrldir", Used),
    ("sslnegotiation", Ignored(SSL_NEGOTIATION)),
    ("gssencmode", ByValue(gss_require_refused)),
    ("channel_binding", Used),
];

/// Keys of `log`.
#[rustfmt::skip]
pub(crate) const LOG: &[Key] = &[
    ("type", Used),
    ("level", Used),
    ("traceback_level", Ignored(PLAIN_LOGS)),
    ("format", Used),
    ("dateformat", Used),
    ("static_fields", Ignored(PLAIN_LOGS)),
    ("max_queue_size", Ignored(PLAIN_LOGS)),
    ("dir", Used),
    ("mode", Ignored(PLAIN_LOGS)),
    ("file_num", Used),
    ("file_size", Used),
    ("loggers", Ignored(PLAIN_LOGS)),
    ("deduplicate_heartbeat_logs", IfTrue(&Ignored(PLAIN_LOGS))),
];

/// Keys of `watchdog`.
#[rustfmt::skip]
pub(crate) const WATCHDOG: &[Key] = &[
    ("mode", Used),
    ("device", Used),
    ("safety_margin", Used),
    ("driver", Ignored("only the default Linux watchdog driver is supported")),
];

/// Keys of `fence` (a patronus extension; Patroni warns about it as unknown).
pub(crate) const FENCE: &[Key] = &[("mode", Used), ("safety_margin", Used), ("socket", Used)];

/// Tags Patroni knows. Other tags are allowed (published as given), so `tags` is not
/// checked for unknown keys.
#[rustfmt::skip]
pub(crate) const TAGS: &[Key] = &[
    ("nofailover", Used),
    ("failover_priority", Used),
    ("noloadbalance", Used),
    ("nosync", Used),
    ("sync_priority", Used),
    ("nostream", Used),
    ("clonefrom", Used),
    ("replicatefrom", Used),
];

/// Every section of a node file checked for unknown keys: dotted path and its keys.
#[rustfmt::skip]
pub const NODE_SECTIONS: &[(&str, &[Key])] = &[
    ("", TOP_LEVEL),
    ("restapi", RESTAPI),
    ("restapi.authentication", BASIC_AUTH),
    ("etcd3", ETCD),
    ("etcd", ETCD),
    ("bootstrap", BOOTSTRAP),
    ("postgresql", POSTGRESQL),
    ("postgresql.authentication", AUTHENTICATION),
    ("postgresql.authentication.superuser", CREDENTIALS),
    ("postgresql.authentication.replication", CREDENTIALS),
    ("postgresql.authentication.rewind", CREDENTIALS),
    ("log", LOG),
    ("watchdog", WATCHDOG),
    ("fence", FENCE),
];

/// Sections of a node file whose known keys have a status but whose other keys are allowed.
#[rustfmt::skip]
pub const OPEN_NODE_SECTIONS: &[(&str, &[Key])] = &[("tags", TAGS)];

/// Top-level keys of the dynamic (DCS) configuration that are not scalars (sections, slot
/// lists); the scalar keys and their aliases are in [`DYNAMIC_KEYS`].
#[rustfmt::skip]
const DYNAMIC_SECTION_KEYS: &[Key] = &[
    ("slots", Used),
    ("permanent_slots", Used),
    ("permanent_replication_slots", Used),
    ("ignore_slots", Used),
    ("standby_cluster", Used),
    ("postgresql", Used),
    ("citus", Ignored("Citus clusters are not supported")),
];

/// Every top-level key of the dynamic configuration: the scalar keys of [`DYNAMIC_KEYS`]
/// (each alias with its key's status), then the sections.
pub static DYNAMIC_TOP_LEVEL: LazyLock<Vec<Key>> = LazyLock::new(|| {
    DYNAMIC_KEYS
        .iter()
        .flat_map(|k| k.names().map(move |n| (n, k.status)))
        .chain(DYNAMIC_SECTION_KEYS.iter().copied())
        .collect()
});

/// Keys of `postgresql` in the dynamic configuration.
#[rustfmt::skip]
pub(crate) const DYNAMIC_POSTGRESQL: &[Key] = &[
    ("parameters", Used),
    ("pg_hba", Used),
    ("pg_ident", Used),
    ("use_pg_rewind", Used),
    ("use_slots", Used),
    ("recovery_conf", Used),
    ("parameters_primary", Used),
    ("parameters_replica", Used),
    ("parameters_standby_leader", Used),
    ("pg_hba_primary", Used),
    ("pg_hba_replica", Used),
    ("pg_hba_standby_leader", Used),
    ("pg_ident_primary", Used),
    ("pg_ident_replica", Used),
    ("pg_ident_standby_leader", Used),
];

/// Every section of the dynamic configuration: dotted path and its keys.
pub static DYNAMIC_SECTIONS: LazyLock<[(&str, &[Key]); 2]> = LazyLock::new(|| {
    [
        ("", DYNAMIC_TOP_LEVEL.as_slice()),
        ("postgresql", DYNAMIC_POSTGRESQL),
    ]
});

/// Status of `key` in `table`, if the key is known there.
pub fn status_in(table: &[Key], key: &str) -> Option<KeyStatus> {
    table.iter().find(|(k, _)| *k == key).map(|(_, s)| *s)
}

fn is_in(table: &[Key], key: &str) -> bool {
    status_in(table, key).is_some()
}

fn str_value(v: &Value) -> String {
    v.as_str()
        .map(str::trim)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn diverged_timelines(_: &Map<String, Value>, v: &Value) -> KeyStatus {
    if parse_bool(v) == Some(true) {
        Used
    } else {
        Ignored("a diverged member that cannot rewind is always re-cloned")
    }
}

fn gss_require_refused(_: &Map<String, Value>, v: &Value) -> KeyStatus {
    if str_value(v) == "require" {
        Unsafe(GSS_REQUIRE)
    } else {
        Used
    }
}

/// Whether an unknown dynamic top-level key is an allowed extension (`x_*`, `patronus*`).
pub(crate) fn is_dynamic_extension(key: &str) -> bool {
    key.starts_with("x_") || key.starts_with("patronus")
}

/// Whether `key` is a known top-level key of the dynamic configuration.
pub(crate) fn is_known_dynamic_key(key: &str) -> bool {
    is_in(&DYNAMIC_TOP_LEVEL, key) || is_dynamic_extension(key)
}

/// Whether `key` is a known key of `postgresql` in the dynamic configuration.
pub(crate) fn is_known_dynamic_postgresql_key(key: &str) -> bool {
    is_in(DYNAMIC_POSTGRESQL, key)
}

/// The value at a dotted path (`""` is the whole tree).
pub fn lookup<'a>(tree: &'a Value, dotted: &str) -> Option<&'a Value> {
    if dotted.is_empty() {
        return Some(tree);
    }
    dotted.split('.').try_fold(tree, |v, k| v.get(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_extensions() {
        assert!(is_known_dynamic_key("ttl"));
        assert!(is_known_dynamic_key("x_custom"));
        assert!(is_known_dynamic_key("patronus_feature"));
        assert!(!is_known_dynamic_key("ttll"));
        assert!(is_known_dynamic_postgresql_key("pg_ident"));
        assert!(!is_known_dynamic_postgresql_key("pg_hab"));
    }
}
