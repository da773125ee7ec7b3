//! Patroni's libpq TLS keys of a `postgresql.authentication` entry (`sslmode`, `sslrootcert`,
//! `sslcert`, `sslkey`, `sslpassword`, `sslcrl`, `sslcrldir`, `gssencmode`,
//! `channel_binding`): rendered into every conninfo given to libpq tools and
//! `primary_conninfo`, and honoured by the agent's own connections.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// libpq `sslmode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// Plain first, TLS if the server insists (the agent's own connections: like prefer).
    Allow,
    /// TLS when the server offers it, without verification (libpq's default).
    #[default]
    Prefer,
    /// TLS, no verification (verify-ca when `sslrootcert` is set, as libpq does).
    Require,
    /// TLS, the server certificate chains to `sslrootcert`.
    VerifyCa,
    /// TLS, chain verified and the host name matches the certificate.
    VerifyFull,
}

impl SslMode {
    /// The libpq keyword value.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// libpq `channel_binding` / `gssencmode` (same three values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Negotiated {
    /// Never.
    Disable,
    /// When available.
    Prefer,
    /// Or fail.
    Require,
}

impl Negotiated {
    /// The libpq keyword value.
    pub fn as_str(self) -> &'static str {
        match self {
            Negotiated::Disable => "disable",
            Negotiated::Prefer => "prefer",
            Negotiated::Require => "require",
        }
    }
}

/// The TLS settings of one role's connections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PgSsl {
    /// `sslmode` (prefer when absent).
    pub sslmode: Option<SslMode>,
    /// CA file verifying the server (`verify-ca`, `verify-full`); `system` for the system's
    /// roots, as libpq.
    pub sslrootcert: Option<PathBuf>,
    /// Client certificate.
    pub sslcert: Option<PathBuf>,
    /// Its private key.
    pub sslkey: Option<PathBuf>,
    /// Password of an encrypted `sslkey` (a secret: never logged nor published).
    pub sslpassword: Option<String>,
    /// Certificate revocation list file.
    pub sslcrl: Option<PathBuf>,
    /// Certificate revocation list directory.
    pub sslcrldir: Option<PathBuf>,
    /// `gssencmode` (libpq tools only; the agent's connections never use GSSAPI).
    pub gssencmode: Option<Negotiated>,
    /// `channel_binding` (SCRAM channel binding).
    pub channel_binding: Option<Negotiated>,
}

impl PgSsl {
    /// The effective `sslmode`.
    pub fn mode(&self) -> SslMode {
        self.sslmode.unwrap_or_default()
    }

    /// libpq keyword/value pairs, in a fixed order; `sslmode` always, the rest when set.
    pub fn conninfo_pairs(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let pairs = [
            ("sslmode", Some(self.mode().as_str().to_string())),
            ("sslrootcert", path(&self.sslrootcert)),
            ("sslcert", path(&self.sslcert)),
            ("sslkey", path(&self.sslkey)),
            ("sslpassword", self.sslpassword.clone()),
            ("sslcrl", path(&self.sslcrl)),
            ("sslcrldir", path(&self.sslcrldir)),
            (
                "gssencmode",
                self.gssencmode.map(|v| v.as_str().to_string()),
            ),
            (
                "channel_binding",
                self.channel_binding.map(|v| v.as_str().to_string()),
            ),
        ];
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_patroni_keys() {
        let v = serde_json::json!({"sslmode": "verify-full", "sslrootcert": "/ca.crt",
            "sslcert": "/c.crt", "sslkey": "/c.key", "channel_binding": "require"});
        let s: PgSsl = serde_json::from_value(v).unwrap();
        assert_eq!(s.mode(), SslMode::VerifyFull);
        let keys: Vec<&str> = s.conninfo_pairs().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "sslmode",
                "sslrootcert",
                "sslcert",
                "sslkey",
                "channel_binding"
            ]
        );
        assert_eq!(
            PgSsl::default().conninfo_pairs(),
            [("sslmode", "prefer".into())]
        );
        assert!(serde_json::from_value::<PgSsl>(serde_json::json!({"sslmode": "sure"})).is_err());
    }
}
