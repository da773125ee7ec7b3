//! The `patronus` binary: parse → run → exit code. `anyhow` lives only here.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use patronus::cli::agent_cmd::{self, AgentArgs};

/// PostgreSQL high availability compatible with Patroni, plus a GitOps reconciler.
#[derive(Debug, Parser)]
#[command(name = "patronus", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node agent beside one PostgreSQL instance (HA loop + REST API).
    Agent(AgentArgs),
    /// Print the version.
    Version,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("patronus: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Version => {
            println!("patronus {}", env!("CARGO_PKG_VERSION"));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Agent(args) => agent(args),
    }
}

fn agent(args: AgentArgs) -> anyhow::Result<std::process::ExitCode> {
    let Some(path) = args.path() else {
        bail!("no configuration file given (use -c FILE)");
    };
    let (cfg, warnings) = agent_cmd::load(&path)?;
    if args.validate_config.is_some() {
        for w in &warnings {
            println!("warning: {w}");
        }
        println!("{}: configuration is valid", path.display());
        return Ok(std::process::ExitCode::SUCCESS);
    }
    patronus::cli::logging::init(&cfg.log.level, cfg.log.kind == "json");
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let min_ttl = std::env::var("PATRONUS_MIN_TTL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let abs = std::fs::canonicalize(&path).unwrap_or(path);
    rt.block_on(patronus::agent::run::run_agent(cfg, abs, min_ttl))?;
    Ok(std::process::ExitCode::SUCCESS)
}
