//! Errors and warnings produced while loading configuration.

use std::fmt;
use std::path::PathBuf;

/// A fatal problem with a node configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{file}: invalid YAML: {reason}")]
    Yaml {
        /// Name of the file (or other source) being parsed.
        file: String,
        /// What the YAML parser reported.
        reason: String,
    },
    /// The YAML is well formed but the configuration is not valid.
    #[error("{file}: invalid configuration:\n  - {}", .problems.join("\n  - "))]
    Invalid {
        /// Name of the file (or other source) being parsed.
        file: String,
        /// Every problem found, each formatted as `path: reason`.
        problems: Vec<String>,
    },
}

/// A non-fatal remark about a configuration (unknown key, deprecated section, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Dotted path of the key concerned (e.g. `postgresql.lisen`).
    pub path: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ConfigWarning {
    /// Builds a warning for `path` with `message`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_problem() {
        let e = ConfigError::Invalid {
            file: "a.yml".into(),
            problems: vec!["name: missing".into(), "scope: missing".into()],
        };
        assert_eq!(
            e.to_string(),
            "a.yml: invalid configuration:\n  - name: missing\n  - scope: missing"
        );
    }

    #[test]
    fn read_and_yaml_display() {
        let e = ConfigError::Read {
            path: PathBuf::from("/x.yml"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(e.to_string(), "cannot read /x.yml: gone");
        let e = ConfigError::Yaml {
            file: "f".into(),
            reason: "bad".into(),
        };
        assert_eq!(e.to_string(), "f: invalid YAML: bad");
    }

    #[test]
    fn warning_display() {
        let w = ConfigWarning::new("log.x", "unknown key 'log.x'");
        assert_eq!(w.to_string(), "log.x: unknown key 'log.x'");
    }
}
