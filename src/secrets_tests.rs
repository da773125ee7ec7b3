use super::*;
use proptest::prelude::*;
use serde_json::json;

/// (name, value, secret?) — the rule on real PostgreSQL settings and Patroni keys.
const SETTINGS: &[(&str, &str, bool)] = &[
    ("password_encryption", "scram-sha-256", false),
    ("ssl_passphrase_command", "echo hunter2", true),
    ("ssl_passphrase_command_supports_reload", "on", false),
    ("ssl_key_file", "/etc/ssl/server.key", false),
    ("krb_server_keyfile", "/etc/krb5.keytab", false),
    (
        "primary_conninfo",
        "host=10.0.0.1 port=5432 user=rep",
        false,
    ),
    (
        "primary_conninfo",
        "host=10.0.0.1 user=rep password=s3cret",
        true,
    ),
    ("primary_conninfo", "host=a password = 's3 cret'", true),
    ("primary_conninfo", "host=a sslpassword=x", true),
    (
        "primary_conninfo",
        "postgresql://rep:s3cret@10.0.0.1/postgres",
        true,
    ),
    (
        "primary_conninfo",
        "postgresql://rep@10.0.0.1:5432/db",
        false,
    ),
    (
        "restore_command",
        "PGPASSWORD=x pg_receivewal -h h %f %p",
        true,
    ),
    ("archive_command", "cp %p /archive/%f", false),
    ("archive_command", "rclone --password=x copy %p r:%f", true),
    ("shared_buffers", "128MB", false),
    ("log_line_prefix", "%m [%p] %q%u@%d ", false),
    ("key_password", "x", true),
    ("keyfile_password", "x", true),
    ("vault_token", "abc", true),
    ("my.secret", "abc", true),
    ("authentication_timeout", "60s", false),
    ("scram_iterations", "4096", false),
];

#[test]
fn the_rule_on_real_settings() {
    for (name, value, secret) in SETTINGS {
        assert_eq!(
            is_secret_setting(name, value),
            *secret,
            "{name} = {value:?} should be secret: {secret}"
        );
    }
}

#[test]
fn conninfo_redaction() {
    let cases = [
        (
            "host=a password=s3cret port=1",
            "host=a password=*** port=1",
        ),
        (
            "host=a password='s3 \\' cret' port=1",
            "host=a password=*** port=1",
        ),
        ("PGPASSWORD=x pg_receivewal", "PGPASSWORD=*** pg_receivewal"),
        (
            "postgresql://rep:s3cret@h:5432/db?sslmode=require",
            "postgresql://rep:***@h:5432/db?sslmode=require",
        ),
        (
            "postgres://h/db?user=rep&password=s3cret&sslmode=require",
            "postgres://h/db?user=rep&password=***&sslmode=require",
        ),
        (
            r#"{"password": "s3cret", "user": "u"}"#,
            r#"{"password": ***, "user": "u"}"#,
        ),
        (
            "password authentication failed for user",
            "password authentication failed for user",
        ),
        (
            "password_encryption = scram-sha-256",
            "password_encryption = scram-sha-256",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(redact(text), want, "{text}");
    }
}

#[test]
fn json_documents() {
    let doc = json!({
        "postgresql": {"parameters": {
            "primary_conninfo": "host=a password=s3cret",
            "password_encryption": "scram-sha-256",
            "ssl_passphrase_command": "echo x",
            "shared_buffers": "1GB",
        }},
        "list": ["ok", "user=u password=p"],
        "password": null,
    });
    let mut paths = secret_paths(&doc);
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "list.1",
            "postgresql.parameters.primary_conninfo",
            "postgresql.parameters.ssl_passphrase_command",
        ]
    );
    let red = redact_json(&doc);
    assert_eq!(
        red["postgresql"]["parameters"]["primary_conninfo"],
        "host=a password=***"
    );
    assert_eq!(
        red["postgresql"]["parameters"]["ssl_passphrase_command"],
        REDACTED
    );
    assert_eq!(
        red["postgresql"]["parameters"]["password_encryption"],
        "scram-sha-256"
    );
    assert_eq!(redact_json(&red), red, "redaction is idempotent");
    assert!(!red.to_string().contains("s3cret") && !red.to_string().contains("echo x"));
}

#[test]
fn strip_keeps_only_public_settings() {
    let m = json!({"primary_conninfo": "host=a password=p", "work_mem": "4MB",
        "ssl_passphrase_command": "echo x", "password_encryption": "md5"});
    let kept = strip_secret_settings(m.as_object().unwrap().clone());
    let mut names: Vec<&String> = kept.keys().collect();
    names.sort();
    assert_eq!(names, ["password_encryption", "work_mem"]);
}

fn marker() -> impl Strategy<Value = String> {
    "ZQ[A-Z0-9]{4,16}"
}

/// Text around the marker: anything but `Z` (so the marker cannot appear by accident),
/// with the characters that matter to conninfo and URIs.
fn around() -> impl Strategy<Value = String> {
    "[a-y0-9 =:'\"@/&\\\\?,;{}()\t\n-]{0,40}"
}

proptest! {
    #![proptest_config(crate::prop_support::config())]

    #[test]
    fn redaction_removes_any_password(pre in around(), m in marker(), post in around(),
                                      kw in "(password|PASSWORD|PGPASSWORD|sslpassword|passwd)",
                                      quote in "(|'|\")", sep in "( =| = |=|: )") {
        let text = format!("{pre}{kw}{sep}{quote}{m}{post}");
        let red = redact(&text);
        prop_assert!(!red.contains(&m), "{text:?} -> {red:?}");
        prop_assert!(carries_secret(&text));
        prop_assert!(is_secret_setting("any_name", &text));
    }

    #[test]
    fn redaction_removes_uri_passwords(user in "[a-y]{1,8}", m in marker(), host in "[a-y.]{1,12}",
                                       post in around()) {
        let text = format!("postgresql://{user}:{m}@{host}:5432/db{post}");
        prop_assert!(!redact(&text).contains(&m));
    }

    #[test]
    fn redact_json_removes_marker_everywhere(m in marker(), key in "[a-y_]{1,12}") {
        let doc = json!({key.clone(): format!("host=h password={m}"),
            "nested": [{"password": m.clone()}, {"x": format!("postgres://u:{m}@h")}]});
        let red = redact_json(&doc).to_string();
        prop_assert!(!red.contains(&m), "{red}");
        let stripped = strip_secret_settings(doc.as_object().unwrap().clone());
        prop_assert!(!Value::Object(stripped).to_string().contains(&m));
    }
}
