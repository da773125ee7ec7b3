//! `patronus agent`: run the node agent, or validate its configuration.

use crate::config::{load_node_config, ConfigError, ConfigWarning, NodeConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `patronus agent`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  patronus agent -c /etc/patroni/node1.yml\n  patronus agent --validate-config /etc/patroni/node1.yml"
)]
pub struct AgentArgs {
    /// Node configuration file (Patroni's YAML format).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check the configuration file, print problems, and exit (0 = valid).
    #[arg(long = "validate-config", value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub validate_config: Option<PathBuf>,
    /// Configuration file given without -c (as `patroni node.yml`).
    #[arg(value_name = "CONFIG")]
    pub positional: Option<PathBuf>,
}

/// Loads the node config with the process environment, printing warnings.
pub fn load(path: &Path) -> Result<(NodeConfig, Vec<ConfigWarning>), ConfigError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_node_config(path, &env)
}

impl AgentArgs {
    /// The config path from `--config`, the global `-c`, `--validate-config FILE` or the
    /// positional argument.
    pub fn path(&self, global: Option<&Path>) -> Option<PathBuf> {
        let v = self
            .validate_config
            .clone()
            .filter(|p| !p.as_os_str().is_empty());
        self.config
            .clone()
            .or(global.map(Path::to_path_buf))
            .or(v)
            .or(self.positional.clone())
    }
}
