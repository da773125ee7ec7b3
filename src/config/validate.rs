//! Validation of a typed node configuration: required settings, ports and
//! enumerations. Every problem is collected as `path: reason`.

use super::error::ConfigWarning;
use super::node::{check_port, NodeConfig};

/// Accepted `log.level` values (case-insensitive).
const LOG_LEVELS: &[&str] = &["DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"];
/// Accepted `log.type` values (case-insensitive).
const LOG_TYPES: &[&str] = &["plain", "json"];
/// Accepted (normalised) `watchdog.mode` values.
const WATCHDOG_MODES: &[&str] = &["off", "automatic", "required"];

/// Checks `config`, appending problems and warnings. `failed` lists the paths that
/// already had a type error, so they are not reported a second time as missing.
pub fn validate_node(
    config: &NodeConfig,
    failed: &[String],
    problems: &mut Vec<String>,
    warnings: &mut Vec<ConfigWarning>,
) {
    required_settings(config, failed, problems);
    address_checks(config, problems);
    mode_checks(config, problems);
    if let Some(bootstrap) = &config.bootstrap {
        if !bootstrap.dcs.is_object() {
            problems.push("bootstrap.dcs: expected a mapping".to_string());
        }
    }
    super::lifecycle_checks::check_lifecycle(config, problems, warnings);
    for c in config.tag_view().conflicts() {
        warnings.push(ConfigWarning::new(
            "tags",
            tag_conflict_text(&c, config.failover_priority()),
        ));
    }
    validate_restapi_tls(config, problems, warnings);
}

/// Settings without which the agent cannot run (unless their parsing already failed, which
/// `failed` names).
fn required_settings(config: &NodeConfig, failed: &[String], problems: &mut Vec<String>) {
    let pg = &config.postgresql;
    let auth = &pg.authentication;
    let mut required = |path: &str, missing: bool| {
        let already = failed
            .iter()
            .any(|f| f == path || path.starts_with(&format!("{f}.")));
        if missing && !already {
            problems.push(format!("{path}: missing required setting"));
        }
    };
    required("name", config.name.trim().is_empty());
    required("scope", config.scope.trim().is_empty());
    required("restapi.listen", config.restapi.listen.trim().is_empty());
    required("postgresql.listen", pg.listen.trim().is_empty());
    required(
        "postgresql.connect_address",
        pg.connect_address.trim().is_empty(),
    );
    required("postgresql.data_dir", pg.data_dir.as_os_str().is_empty());
    required(
        "postgresql.authentication.superuser.username",
        auth.superuser.username.trim().is_empty(),
    );
    required(
        "postgresql.authentication.replication.username",
        auth.replication.username.trim().is_empty(),
    );
    if let Some(rewind) = &auth.rewind {
        required(
            "postgresql.authentication.rewind.username",
            rewind.username.trim().is_empty(),
        );
    }
}

/// `host:port` addresses of the REST API, PostgreSQL and etcd, and etcd's protocol.
fn address_checks(config: &NodeConfig, problems: &mut Vec<String>) {
    let pg = &config.postgresql;
    let addresses = [
        ("restapi.listen", &config.restapi.listen),
        ("restapi.connect_address", &config.restapi.connect_address),
        ("postgresql.listen", &pg.listen),
        ("postgresql.connect_address", &pg.connect_address),
    ];
    for (path, addr) in addresses {
        if let Err(reason) = check_port(addr) {
            problems.push(format!("{path}: {reason}"));
        }
    }
    for (i, host) in config.etcd3.hosts.iter().enumerate() {
        if let Err(reason) = check_port(host) {
            problems.push(format!("etcd3.hosts[{i}]: {reason}"));
        }
    }
    let protocol = config.etcd3.protocol.to_ascii_lowercase();
    if protocol != "http" && protocol != "https" {
        problems.push(format!(
            "etcd3.protocol: '{}' is not http or https",
            config.etcd3.protocol
        ));
    }
}

/// Settings that take one of a few words: log level and type, watchdog and fence modes.
fn mode_checks(config: &NodeConfig, problems: &mut Vec<String>) {
    let level = config.log.level.to_ascii_uppercase();
    if !LOG_LEVELS.contains(&level.as_str()) {
        problems.push(format!(
            "log.level: '{}' is not one of {}",
            config.log.level,
            LOG_LEVELS.join(", ")
        ));
    }
    let kind = config.log.kind.to_ascii_lowercase();
    if !LOG_TYPES.contains(&kind.as_str()) {
        problems.push(format!(
            "log.type: '{}' is not plain or json",
            config.log.kind
        ));
    }
    if !WATCHDOG_MODES.contains(&config.watchdog.mode.as_str()) {
        problems.push(format!(
            "watchdog.mode: '{}' is not off, automatic or required",
            config.watchdog.mode
        ));
    }
    if !matches!(config.fence.mode.as_str(), "on" | "off" | "true" | "false") {
        problems.push(format!(
            "fence.mode: '{}' is not on or off",
            config.fence.mode
        ));
    }
    if config.fence.safety_margin < 0 {
        problems.push(format!(
            "fence.safety_margin: {} is negative",
            config.fence.safety_margin
        ));
    }
}

/// The warning for contradicting tags (Patroni's text, plus what follows from it here).
fn tag_conflict_text(c: &super::tags::TagConflict, failover_priority: i64) -> String {
    let effect = match (c.flag, c.flag_value) {
        ("nofailover", true) => "this member never becomes leader".to_string(),
        ("nofailover", false) => format!(
            "this member may become leader, ranked with failover priority {failover_priority}"
        ),
        (_, true) => "this member is never a synchronous standby".to_string(),
        (_, false) => "this member may be a synchronous standby".to_string(),
    };
    format!(
        "Conflicting configuration between {}: {} and {}: {}. Defaulting to {}: {} ({effect})",
        c.flag, c.flag_value, c.priority, c.priority_value, c.flag, c.flag_value
    )
}

/// TLS keys without `restapi.certfile`: the API is plain HTTP (as in Patroni, which ignores
/// them). Asking for client certificates then would be a protection silently not given: a
/// problem; the other keys are a warning.
fn validate_restapi_tls(
    config: &NodeConfig,
    problems: &mut Vec<String>,
    warnings: &mut Vec<ConfigWarning>,
) {
    let api = &config.restapi;
    if api.certfile.is_some() {
        return;
    }
    if api.verify_client != crate::tls::ClientCertMode::None {
        problems.push(
            "restapi.verify_client: client certificates need HTTPS: set restapi.certfile \
             (without it the API is plain HTTP and no client certificate is checked)"
                .to_string(),
        );
    }
    let unused = [
        ("restapi.keyfile", api.keyfile.is_some()),
        ("restapi.keyfile_password", api.keyfile_password.is_some()),
        ("restapi.cafile", api.cafile.is_some()),
    ];
    for (path, set) in unused {
        if set {
            warnings.push(ConfigWarning::new(
                path,
                "not used without restapi.certfile: the API is served over plain HTTP",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> NodeConfig {
        let mut c = NodeConfig {
            name: "n1".into(),
            scope: "s".into(),
            ..NodeConfig::default()
        };
        c.restapi.listen = "127.0.0.1:8008".into();
        c.restapi.connect_address = "127.0.0.1:8008".into();
        c.postgresql.listen = "*:5432".into();
        c.postgresql.connect_address = "127.0.0.1:5432".into();
        c.postgresql.data_dir = "/d".into();
        c.postgresql.authentication.superuser.username = "postgres".into();
        c.postgresql.authentication.replication.username = "rep".into();
        c.etcd3.hosts = vec!["127.0.0.1:2379".into()];
        c
    }

    fn check(c: &NodeConfig) -> (Vec<String>, Vec<ConfigWarning>) {
        let (mut p, mut w) = (Vec::new(), Vec::new());
        validate_node(c, &[], &mut p, &mut w);
        (p, w)
    }

    #[test]
    fn valid_config_has_no_problems() {
        assert_eq!(check(&valid()), (vec![], vec![]));
    }

    #[test]
    fn bad_ports_and_enums() {
        let mut c = valid();
        c.postgresql.listen = "*:0".into();
        c.restapi.connect_address = "h:99999".into();
        c.etcd3.hosts.push("e:abc".into());
        c.log.level = "verbose".into();
        c.log.kind = "xml".into();
        c.watchdog.mode = "sometimes".into();
        let (p, _) = check(&c);
        let paths: Vec<&str> = p.iter().filter_map(|s| s.split(':').next()).collect();
        assert_eq!(
            paths,
            vec![
                "restapi.connect_address",
                "postgresql.listen",
                "etcd3.hosts[1]",
                "log.level",
                "log.type",
                "watchdog.mode"
            ]
        );
    }

    #[test]
    fn log_level_is_case_insensitive() {
        let mut c = valid();
        c.log.level = "warn".into();
        c.log.kind = "JSON".into();
        assert!(check(&c).0.is_empty());
    }

    #[test]
    fn failed_paths_are_not_reported_missing() {
        let c = NodeConfig::default();
        let (mut p, mut w) = (Vec::new(), Vec::new());
        validate_node(&c, &["name".into(), "postgresql".into()], &mut p, &mut w);
        assert!(!p.iter().any(|s| s.starts_with("name:")));
        assert!(!p.iter().any(|s| s.starts_with("postgresql.")));
        assert!(p.iter().any(|s| s.starts_with("scope:")));
    }

    #[test]
    fn contradicting_failover_tags_warn() {
        let mut c = valid();
        c.tags.insert("nofailover".into(), json!(true));
        c.tags.insert("failover_priority".into(), json!(2));
        let (_, w) = check(&c);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].path, "tags");
        assert_eq!(c.failover_priority(), 0);
        assert!(
            w[0].message.contains("Defaulting to nofailover: true"),
            "{}",
            w[0].message
        );
        c.tags.insert("nofailover".into(), json!(false));
        c.tags.insert("failover_priority".into(), json!(0));
        let (_, w) = check(&c);
        assert!(
            w[0].message
                .contains("may become leader, ranked with failover priority 0"),
            "{}",
            w[0].message
        );
    }
}
