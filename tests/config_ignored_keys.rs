//! `patronus agent --validate-config` on node files with keys Patroni knows but patronus
//! does not act on: ignored keys are named in a warning (exit 0), keys whose absence
//! would be unsafe are refused (exit 1) with the key and the reason.

use std::process::{Command, Output};

/// The smallest valid node file; each test appends sections to it.
const MINIMAL: &str = "\
scope: s
name: n1
restapi:
  listen: 127.0.0.1:8008
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /tmp/patronus-ignored-keys/data
  authentication:
    superuser:
      username: postgres
    replication:
      username: rep
";

const ETCD3: &str = "etcd3:\n  hosts: 127.0.0.1:2379\n";

/// `MINIMAL` with `lines` (indented by two spaces) added to `section`, then `extra`.
fn node(section: &str, lines: &str, extra: &str) -> String {
    let head = format!("{section}:\n");
    assert!(MINIMAL.contains(&head), "no section {section}");
    let body = format!("{head}{lines}");
    format!("{}{extra}", MINIMAL.replacen(&head, &body, 1))
}

/// Runs `patronus agent --validate-config` on `MINIMAL` plus `extra`.
fn validate(extra: &str) -> (Output, String) {
    validate_text(&format!("{MINIMAL}{extra}"))
}

/// Runs `patronus agent --validate-config` on a whole node file.
fn validate_text(yaml: &str) -> (Output, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("node.yml");
    std::fs::write(&file, yaml).expect("write node file");
    let out = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .env_remove("PATRONI_CONFIGURATION")
        .arg("agent")
        .arg("--validate-config")
        .arg(&file)
        .output()
        .expect("run patronus");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// Asserts that `MINIMAL` plus `extra` is refused and the output names `key` and `why`.
/// (No top-level key is refused today since standby clusters work; kept for the next one.)
#[allow(dead_code)]
fn assert_refused(extra: &str, key: &str, why: &str) {
    assert_text_refused(&format!("{MINIMAL}{extra}"), key, why);
}

/// Asserts that the node file `yaml` is refused and the output names `key` and `why`.
fn assert_text_refused(yaml: &str, key: &str, why: &str) {
    let (out, text) = validate_text(yaml);
    assert!(!out.status.success(), "{key} must be refused: {text}");
    assert!(text.contains(&format!("{key}: ")), "names {key}: {text}");
    assert!(text.contains(why), "says why ({why}): {text}");
    assert!(!text.contains("configuration is valid"), "{text}");
}

#[test]
fn minimal_file_is_valid_without_warnings() {
    let (out, text) = validate(ETCD3);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("configuration is valid"), "{text}");
    assert!(!text.contains("warning"), "{text}");
}

#[test]
fn ignored_keys_are_named_and_accepted() {
    let yaml = node(
        "postgresql",
        "  callbacks:\n    on_start: /bin/true\n",
        &format!(
            "{ETCD3}log:\n  dir: /var/log/patroni\n  loggers:\n    etcd.client: DEBUG\nbootstrap:\n  method: pitr\n  pitr:\n    command: /restore.sh\n"
        ),
    );
    let (out, text) = validate_text(&yaml);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("configuration is valid"), "{text}");
    // Callbacks and custom bootstrap methods are run: accepted without a warning.
    for key in ["postgresql.callbacks", "bootstrap.method"] {
        assert!(!text.contains(&format!("{key}: ")), "{key} is used: {text}");
    }
    assert!(!text.contains("log.dir: "), "log.dir is used: {text}");
    let key = "log.loggers";
    let line = text.lines().find(|l| l.contains(&format!("{key}: ")));
    assert!(
        line.is_some_and(
            |l| l.starts_with("warning:") && l.contains("not implemented yet and is ignored")
        ),
        "{key} is named as ignored: {text}"
    );
    assert!(!text.contains("unknown key"), "{text}");
}

#[test]
fn watchdog_modes_are_accepted() {
    for mode in ["required", "automatic", "off"] {
        let (out, text) = validate(&format!("{ETCD3}watchdog:\n  mode: {mode}\n"));
        assert!(out.status.success(), "{mode}: {text}");
        assert!(!text.contains("watchdog.mode"), "{mode}: {text}");
    }
}

#[test]
fn rest_tls_files_are_read_at_validation() {
    // A missing certificate stops the start, naming the file and the reason.
    let yaml = node("restapi", "  certfile: /nonexistent/api.pem\n", ETCD3);
    let (out, text) = validate_text(&yaml);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("/nonexistent/api.pem"), "{text}");
    assert!(text.contains("No such file"), "{text}");
    // A malformed allowlist network is refused; a valid one is accepted silently.
    let yaml = node("restapi", "  allowlist: [10.0.0.0/40]\n", ETCD3);
    let (out, text) = validate_text(&yaml);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("restapi.allowlist") && text.contains("10.0.0.0/40"),
        "{text}"
    );
    let yaml = node(
        "restapi",
        "  allowlist: [10.0.0.0/8, 127.0.0.1]\n  allowlist_include_members: true\n",
        ETCD3,
    );
    let (out, text) = validate_text(&yaml);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("allowlist"), "{text}");
}

#[test]
fn rest_ciphers_warn_they_are_ignored() {
    let yaml = node("restapi", "  ciphers: ECDHE+AESGCM\n", ETCD3);
    let (out, text) = validate_text(&yaml);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("restapi.ciphers") && text.contains("OpenSSL cipher string"),
        "{text}"
    );
}

#[test]
fn etcd_tls_and_auth_keys_are_accepted() {
    for etcd in [
        "etcd3:\n  hosts: 127.0.0.1:2379\n  protocol: https\n  cacert: /etc/ssl/ca.pem\n  cert: /etc/ssl/c.pem\n  key: /etc/ssl/c.key\n  key_password: k\n  username: patronus\n  password: p\n",
        "etcd3:\n  url: https://127.0.0.1:2379\n",
    ] {
        let (out, text) = validate(etcd);
        assert!(out.status.success(), "{etcd}: {text}");
        assert!(!text.contains("etcd3."), "no warning about etcd3 keys: {text}");
    }
}

#[test]
fn standby_cluster_in_bootstrap_dcs_is_accepted() {
    let (out, text) = validate(&format!(
        "{ETCD3}bootstrap:\n  dcs:\n    standby_cluster:\n      host: 10.0.0.1\n      port: 5432\n"
    ));
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("standby_cluster"), "{text}");
}

#[test]
fn ignored_dynamic_keys_in_bootstrap_dcs_warn() {
    let (out, text) = validate(&format!(
        "{ETCD3}bootstrap:\n  dcs:\n    failsafe_mode: true\n    slots:\n      s1: {{type: physical}}\n    maximum_lag_on_syncnode: 1\n    synchronous_mode: quorum\n    primary_race_backoff: 1\n"
    ));
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("failsafe_mode"),
        "failsafe_mode is implemented: {text}"
    );
    assert!(!text.contains("slots"), "slots are implemented: {text}");
    assert!(
        !text.contains("maximum_lag_on_syncnode") && !text.contains("synchronous_mode"),
        "maximum_lag_on_syncnode and quorum commit are implemented: {text}"
    );
    assert!(
        text.contains("warning: bootstrap.dcs.primary_race_backoff: "),
        "{text}"
    );
}
