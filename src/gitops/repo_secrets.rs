//! No secret in the desired-state repository: a git history keeps every value forever and is
//! read by everyone who can clone it. What is a secret is decided in one place,
//! [`crate::secrets`]; here each one found in a repository file becomes a problem naming the
//! file, the path and where the secret belongs instead.

use super::desired::YamlFile;
use super::error::RepoProblem;

/// Where a secret goes instead of the repository.
const INSTEAD: &str = "give it to the reconciler through the -c file (etcd3.password, \
    ctl.authentication) or the environment (PATRONI_ETCD3_PASSWORD, PATRONI_CTL_PASSWORD)";

/// Every secret written in the repository's files, as problems (file, path, reason).
pub fn secret_problems(files: &[YamlFile]) -> Vec<RepoProblem> {
    let mut out = Vec::new();
    for f in files {
        for path in crate::secrets::secret_paths(&f.value) {
            out.push(RepoProblem::new(
                &f.rel,
                path,
                format!(
                    "carries a secret (a password, key password or token): no secret may be \
                     committed to the repository; {INSTEAD}"
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn file(rel: &str, value: Value) -> YamlFile {
        YamlFile {
            rel: rel.into(),
            value,
        }
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
