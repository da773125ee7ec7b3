//! Checks of the lifecycle scripts at load time: callbacks, `pre_promote`, `before_stop`,
//! replica method sections and the custom bootstrap method. A command line that cannot be
//! split, a missing custom bootstrap section or command, or a section of the wrong shape is
//! a problem (`path: reason`); an unknown callback name is a warning.

use super::error::ConfigWarning;
use super::node::NodeConfig;
use serde_json::Value;

/// Callback names Patroni runs.
pub const CALLBACK_NAMES: [&str; 5] = [
    "on_start",
    "on_stop",
    "on_restart",
    "on_reload",
    "on_role_change",
];

/// Appends the problems and warnings of the lifecycle settings of `config`.
pub fn check_lifecycle(
    config: &NodeConfig,
    problems: &mut Vec<String>,
    warnings: &mut Vec<ConfigWarning>,
) {
    let pg = &config.postgresql;
    for (name, v) in &pg.callbacks {
        let path = format!("postgresql.callbacks.{name}");
        if !CALLBACK_NAMES.contains(&name.as_str()) {
            warnings.push(ConfigWarning::new(
                &path,
                format!(
                    "unknown callback, never run (known: {})",
                    CALLBACK_NAMES.join(", ")
                ),
            ));
        }
        match v {
            Value::String(cmd) => command_line(&path, cmd, problems),
            Value::Null => {}
            _ => problems.push(format!("{path}: expected a command line")),
        }
    }
    for (path, cmd) in [
        ("postgresql.pre_promote", &pg.pre_promote),
        ("postgresql.before_stop", &pg.before_stop),
    ] {
        if let Some(cmd) = cmd {
            command_line(path, cmd, problems);
        }
    }
    if let Some(v) = pg.basebackup.as_ref().filter(|v| !v.is_null()) {
        if !v.is_array() && !v.is_object() {
            problems.push("postgresql.basebackup: expected a list or a mapping of options".into());
        }
    }
    for method in pg.create_replica_methods.iter().flatten() {
        if method == "basebackup" {
            continue;
        }
        let path = format!("postgresql.{method}");
        match pg.replica_method_config(method) {
            None | Some(Value::Null) => {}
            Some(Value::Object(section)) => {
                if let Some(cmd) = section.get("command") {
                    match cmd.as_str() {
                        Some(cmd) => command_line(&format!("{path}.command"), cmd, problems),
                        None => problems.push(format!("{path}.command: expected a command line")),
                    }
                }
            }
            Some(_) => problems.push(format!("{path}: expected a mapping")),
        }
    }
    if let Some((name, section)) = config.bootstrap.as_ref().and_then(|b| b.custom_method()) {
        check_bootstrap_method(name, section, problems);
    }
}

fn check_bootstrap_method(name: &str, section: Option<&Value>, problems: &mut Vec<String>) {
    let path = format!("bootstrap.{name}");
    let Some(section) = section.and_then(Value::as_object) else {
        problems.push(format!(
            "bootstrap.method: '{name}' needs a {path} section with its command"
        ));
        return;
    };
    match section.get("command").and_then(Value::as_str) {
        Some(cmd) => command_line(&format!("{path}.command"), cmd, problems),
        None => problems.push(format!(
            "{path}.command: missing (a command line is required)"
        )),
    }
    if section
        .get("recovery_conf")
        .is_some_and(|v| !v.is_null() && !v.is_object())
    {
        problems.push(format!("{path}.recovery_conf: expected a mapping"));
    }
}

fn command_line(path: &str, cmd: &str, problems: &mut Vec<String>) {
    match shlex::split(cmd) {
        None => problems.push(format!("{path}: cannot split `{cmd}` (unbalanced quotes)")),
        Some(argv) if argv.is_empty() && !cmd.trim().is_empty() => {
            problems.push(format!("{path}: empty command"))
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> (Vec<String>, Vec<String>) {
        let c: NodeConfig = serde_json::from_value(v).expect("node config");
        let (mut p, mut w) = (Vec::new(), Vec::new());
        check_lifecycle(&c, &mut p, &mut w);
        (p, w.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn good_settings_pass() {
        let (p, w) = check(json!({
            "postgresql": {
                "callbacks": {"on_start": "/cb.sh 'a b'", "on_role_change": "/vip.sh"},
                "pre_promote": "/fence.sh", "before_stop": "/drain.sh",
                "create_replica_methods": ["pgbackrest", "basebackup"],
                "pgbackrest": {"command": "pgbackrest --delta restore", "keep_data": true},
                "basebackup": ["verbose", {"max-rate": "100M"}]
            },
            "bootstrap": {"method": "pitr", "pitr": {"command": "/restore.sh",
                "recovery_conf": {"restore_command": "cp /a/%f %p"}}}
        }));
        assert!(p.is_empty() && w.is_empty(), "{p:?} {w:?}");
    }

    #[test]
    fn problems_name_the_field_and_reason() {
        let (p, w) = check(json!({
            "postgresql": {
                "callbacks": {"on_start": "/cb.sh 'open", "on_role_chnage": "/x", "on_stop": ["/x"]},
                "pre_promote": "\"unterminated",
                "create_replica_methods": ["wal_e", "custom"],
                "wal_e": "not a section",
                "custom": {"command": 7, "no_leader": true},
                "basebackup": "fast"
            },
            "bootstrap": {"method": "pitr", "pitr": {"recovery_conf": "x"}}
        }));
        assert_eq!(
            p,
            vec![
                "postgresql.callbacks.on_start: cannot split `/cb.sh 'open` (unbalanced quotes)",
                "postgresql.callbacks.on_stop: expected a command line",
                "postgresql.pre_promote: cannot split `\"unterminated` (unbalanced quotes)",
                "postgresql.basebackup: expected a list or a mapping of options",
                "postgresql.wal_e: expected a mapping",
                "postgresql.custom.command: expected a command line",
                "bootstrap.pitr.command: missing (a command line is required)",
                "bootstrap.pitr.recovery_conf: expected a mapping",
            ]
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("postgresql.callbacks.on_role_chnage: "),
            "{w:?}"
        );
        let (p, _) = check(json!({"bootstrap": {"method": "clone"}}));
        assert_eq!(
            p,
            vec!["bootstrap.method: 'clone' needs a bootstrap.clone section with its command"]
        );
        let (p, _) = check(json!({"bootstrap": {"method": "initdb"}}));
        assert!(p.is_empty());
    }
}
