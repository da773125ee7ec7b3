//! tracing subscriber setup: Patroni-like plain lines or JSON.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is Patroni's (`DEBUG`, `INFO`, `WARNING`, …);
/// `RUST_LOG` overrides it.
pub fn init(level: &str, json: bool) {
    let lvl = match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => "info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{lvl},h2=warn,tower=warn,hyper=warn,tonic=warn"))
    });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
