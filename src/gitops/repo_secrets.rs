//! No secret in the desired-state repository: a git history keeps every value forever and is
//! read by everyone who can clone it. A key named like a password, secret or token with a
//! literal value, or a connection string carrying `password=`, is a problem naming the file,
//! the path and where the secret belongs instead.

use super::desired::YamlFile;
use super::error::RepoProblem;
use serde_json::Value;

/// Where a secret goes instead of the repository.
const INSTEAD: &str = "give it to the reconciler through the -c file (etcd3.password, \
    ctl.authentication) or the environment (PATRONI_ETCD3_PASSWORD, PATRONI_CTL_PASSWORD)";

/// Whether a key names a secret: `password`, `key_password`, `keyfile_password`, `passwd`,
/// `secret`, `client_secret`, `token`, `api_token`, ... (a name ending so). Names that only
/// mention it, like `password_encryption`, are not secrets.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token"]
        .iter()
        .any(|s| k == *s || k.ends_with(&format!("_{s}")) || k.ends_with(&format!("-{s}")))
}

/// Whether a string value is a connection string or URL carrying a password
/// (`password=...`, `postgresql://user:pw@host`).
pub(crate) fn carries_password(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if lower
        .split(|c: char| c.is_whitespace() || c == '&' || c == '?')
        .any(|w| w.starts_with("password=") && w.len() > "password=".len())
    {
        return true;
    }
    // scheme://user:password@host
    lower.split_once("://").is_some_and(|(_, rest)| {
        let authority = rest.split('/').next().unwrap_or_default();
        authority.rsplit_once('@').is_some_and(|(userinfo, _)| {
            userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty())
        })
    })
}

fn literal(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty(),
        Value::Number(_) | Value::Bool(_) => true,
        _ => false,
    }
}

fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                path.push(k.clone());
                if is_secret_key(k) && literal(child) {
                    out.push((path.join("."), format!("'{k}' holds a literal secret")));
                } else {
                    walk(child, path, out);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(child, path, out);
                path.pop();
            }
        }
        Value::String(s) if carries_password(s) => {
            out.push((path.join("."), "the value carries a password".into()));
        }
        _ => {}
    }
}

/// Every secret written in the repository's files, as problems (file, path, reason).
pub fn secret_problems(files: &[YamlFile]) -> Vec<RepoProblem> {
    let mut out = Vec::new();
    for f in files {
        let mut found = Vec::new();
        walk(&f.value, &mut Vec::new(), &mut found);
        for (path, what) in found {
            out.push(RepoProblem::new(
                &f.rel,
                path,
                format!("{what}: no secret may be committed to the repository; {INSTEAD}"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(rel: &str, value: Value) -> YamlFile {
        YamlFile {
            rel: rel.into(),
            value,
        }
    }

    #[test]
    fn secret_key_names() {
        for k in [
            "password",
            "PASSWORD",
            "key_password",
            "keyfile_password",
            "passwd",
            "client_secret",
            "token",
            "api-token",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "password_encryption",
            "username",
            "tokens_max",
            "secretary",
            "key",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn conninfo_with_a_password() {
        assert!(carries_password("host=a user=r password=s3cret"));
        assert!(carries_password("postgresql://rep:s3cret@10.0.0.1/db"));
        assert!(carries_password("postgresql://h/db?user=r&password=x"));
        assert!(!carries_password("host=a user=r passfile=/p"));
        assert!(!carries_password("postgresql://rep@10.0.0.1/db"));
        assert!(!carries_password("https://hooks.example/x"));
        assert!(!carries_password("password="));
    }

    #[test]
    fn every_secret_is_named_by_file_and_path() {
        let files = [
            file(
                "patronus.yaml",
                json!({"dcs": {"etcd3": {"hosts": "e:2379", "username": "patronus",
                    "password": "pw", "key_password": "kp", "cacert": "/ca.pem"}}}),
            ),
            file(
                "clusters/acme/cluster.yaml",
                json!({"config": {"postgresql": {"parameters": {
                    "password_encryption": "scram-sha-256",
                    "primary_conninfo": "host=x password=leak"}}},
                    "hooks": [{"api_token": "t"}]}),
            ),
            file("clusters/acme/ops/a.yaml", json!({"type": "switchover"})),
        ];
        let found: Vec<String> = secret_problems(&files)
            .iter()
            .map(|p| format!("{}:{}", p.file, p.path))
            .collect();
        assert_eq!(
            found,
            vec![
                "patronus.yaml:dcs.etcd3.password",
                "patronus.yaml:dcs.etcd3.key_password",
                "clusters/acme/cluster.yaml:config.postgresql.parameters.primary_conninfo",
                "clusters/acme/cluster.yaml:hooks.0.api_token",
            ]
        );
        let p = &secret_problems(&files)[0];
        assert!(p.reason.contains("PATRONI_ETCD3_PASSWORD"), "{}", p.reason);
        assert!(
            !p.to_string().contains("pw"),
            "the secret itself is not repeated"
        );
    }

    #[test]
    fn empty_or_null_values_are_not_secrets() {
        let files = [file(
            "patronus.yaml",
            json!({"dcs": {"etcd3": {"password": "", "key_password": null}}}),
        )];
        assert!(secret_problems(&files).is_empty());
    }
}
