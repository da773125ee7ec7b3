//! The `patronus` binary: parse → run → exit code. `anyhow` lives only here.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use patronus::cli::agent_cmd::{self, AgentArgs};
use patronus::cli::ctl::context::GlobalOpts;
use patronus::cli::ctl::CtlCommand;
use patronus::cli::exit_code::Exit;
use std::process::ExitCode;

/// PostgreSQL high availability compatible with Patroni, plus a GitOps reconciler.
///
/// `patronus agent` runs beside each PostgreSQL instance; every other command is an operator
/// command with patronictl's name, options and output.
#[derive(Debug, Parser)]
#[command(
    name = "patronus",
    version,
    about,
    after_help = format!(
        "Examples:\n  patronus agent -c /etc/patroni/node1.yml\n  patronus -c /etc/patroni/node1.yml list\n  patronus -d etcd3://127.0.0.1:2379/service list acme\n  patronus -c node1.yml switchover --candidate node2 --force\n\n{}",
        patronus::cli::exit_code::help_text()
    )
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node agent beside one PostgreSQL instance (HA loop + REST API).
    Agent(AgentArgs),
    /// Print the version, and with a cluster each member's versions.
    #[command(after_help = "Example:\n  patronus -c node1.yml version acme")]
    Version {
        /// Cluster name.
        cluster: Option<String>,
        /// Members (default: all).
        members: Vec<String>,
    },
    /// Check a desired-state repository offline (schema + PostgreSQL parameter catalog).
    #[command(
        after_help = "Example:\n  patronus validate ./desired\n\nExit codes: 0 valid, 1 invalid (every problem listed with file and path)."
    )]
    Validate {
        /// Repository directory.
        path: std::path::PathBuf,
    },
    /// Show what `apply` would change, per cluster (text, json or markdown).
    Plan(patronus::cli::gitops_cmd::PlanArgs),
    /// Write the desired state to the DCS (compare-and-swap; refuses a stale plan).
    Apply(patronus::cli::gitops_cmd::ApplyArgs),
    /// The GitOps daemon: watch a git repository and the DCS, apply, detect drift.
    Reconcile(patronus::cli::reconcile_cmd::ReconcileArgs),
    /// Run a local 3-member cluster with HAProxy and the reconciler until Ctrl-C.
    Demo(patronus::cli::demo::DemoArgs),
    /// The userspace fence (started by the agent; not run by hand): kills PostgreSQL when
    /// the leader lease could expire without the agent having renewed it.
    #[command(
        after_help = "The agent starts it and feeds it a deadline after every leader-lock update; see docs/operations.md (Fencing).\n\nExample (what the agent runs):\n  patronus fence --socket /var/lib/postgresql/15/patronus-fence-node1.sock --data-dir /var/lib/postgresql/15/main"
    )]
    Fence {
        /// Unix socket the agent connects to.
        #[arg(long)]
        socket: std::path::PathBuf,
        /// Data directory whose postmaster.pid names the postmaster to kill.
        #[arg(long)]
        data_dir: std::path::PathBuf,
        /// Start armed: kill PostgreSQL unless an agent re-arms within this many
        /// milliseconds (the agent passes it when it starts a fence for a running primary).
        #[arg(long, value_name = "MS")]
        armed_ms: Option<u64>,
    },
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "Example:\n  patronus completions bash > /etc/bash_completion.d/patronus"
    )]
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Ctl(CtlCommand),
}

fn main() -> ExitCode {
    // rustls (ring) for every HTTP and etcd client built afterwards.
    patronus::tls::install_provider();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("patronus: {e:#}");
            ExitCode::from(Exit::Failure)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Agent(args) => agent(args, cli.global.config_file.as_deref()),
        Command::Version { cluster, members } => ctl(&cli.global, |g| async move {
            patronus::cli::ctl::list::version(&g, cluster.as_deref(), &members).await
        }),
        Command::Validate { path } => {
            gitops(|| async move { patronus::cli::gitops_cmd::validate(&path) })
        }
        Command::Plan(a) => {
            let g = cli.global.clone();
            gitops(|| async move { patronus::cli::gitops_cmd::plan(&g, &a).await })
        }
        Command::Apply(a) => {
            let g = cli.global.clone();
            gitops(|| async move { patronus::cli::gitops_cmd::apply(&g, &a).await })
        }
        Command::Reconcile(a) => {
            patronus::logging::init("INFO", false);
            let g = cli.global.clone();
            gitops(|| async move { patronus::cli::reconcile_cmd::run(&g, &a).await })
        }
        Command::Demo(a) => {
            patronus::logging::init("INFO", false);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            match rt.block_on(patronus::cli::demo::run(&a)) {
                Ok(()) => Ok(ExitCode::from(Exit::Success)),
                Err(e) => {
                    eprintln!("Error: {e}");
                    Ok(ExitCode::from(Exit::Failure))
                }
            }
        }
        Command::Fence {
            socket,
            data_dir,
            armed_ms,
        } => {
            patronus::logging::init("INFO", false);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let opts = patronus::fence::process::FenceOptions {
                socket,
                data_dir,
                armed: armed_ms.map(std::time::Duration::from_millis),
            };
            rt.block_on(patronus::fence::process::run(opts))?;
            Ok(ExitCode::from(Exit::Success))
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "patronus",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::from(Exit::Success))
        }
        Command::Ctl(cmd) => ctl(&cli.global, |g| async move {
            patronus::cli::ctl::run(&g, &cmd).await
        }),
    }
}

/// Runs an operator command on a small runtime; errors go to stderr with exit code 1.
fn ctl<F, Fut>(g: &GlobalOpts, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(GlobalOpts) -> Fut,
    Fut: std::future::Future<Output = patronus::cli::ctl::error::CliResult<()>>,
{
    if std::env::var_os("RUST_LOG").is_some() {
        patronus::logging::init("WARNING", false);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match rt.block_on(f(g.clone())) {
        Ok(()) => Ok(ExitCode::from(Exit::Success)),
        Err(e) => {
            eprintln!("Error: {e}");
            Ok(ExitCode::from(Exit::Failure))
        }
    }
}

/// Runs a GitOps command; its result is the exit code (errors: message on stderr, 1).
fn gitops<F, Fut>(f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Exit, patronus::gitops::GitopsError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match rt.block_on(f()) {
        Ok(exit) => Ok(ExitCode::from(exit)),
        Err(e) => {
            eprintln!("Error: {e}");
            Ok(ExitCode::from(Exit::Failure))
        }
    }
}

fn agent(args: AgentArgs, global: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let Some(path) = args.path(global) else {
        bail!("no configuration file given (use -c FILE)");
    };
    let (cfg, warnings) = agent_cmd::load(&path)?;
    // Certificates, keys and the allowlist are read now: a broken one stops the start.
    patronus::tls::security::ApiSecurity::load(&cfg)
        .with_context(|| format!("{}: invalid REST API settings", path.display()))?;
    if args.validate_config.is_some() {
        for w in &warnings {
            println!("warning: {w}");
        }
        println!("{}: configuration is valid", path.display());
        return Ok(ExitCode::from(Exit::Success));
    }
    patronus::logging::init_with(&cfg.log);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let min_ttl = patronus::config::min_ttl_from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let abs = std::fs::canonicalize(&path).unwrap_or(path);
    // The process wiring: the REST server (api) in front of the agent, which does not know it.
    let serve_api = patronus::api::spawn_server;
    rt.block_on(patronus::agent::run::run_agent(
        cfg, abs, min_ttl, serve_api,
    ))?;
    Ok(ExitCode::from(Exit::Success))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_help_has_an_example() {
        for sub in Cli::command().get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Example"),
                "`patronus {} --help` shows no example",
                sub.get_name()
            );
        }
    }

    #[test]
    fn agent_takes_the_global_config_flag() {
        let cli = Cli::try_parse_from(["patronus", "agent", "-c", "n.yml"]).unwrap();
        let Command::Agent(a) = cli.command else {
            panic!("agent")
        };
        assert_eq!(a.path(None), Some("n.yml".into()));
        let cli = Cli::try_parse_from(["patronus", "-c", "g.yml", "agent"]).unwrap();
        let Command::Agent(a) = cli.command else {
            panic!("agent")
        };
        assert_eq!(
            a.path(cli.global.config_file.as_deref()),
            Some("g.yml".into())
        );
        assert!(Cli::try_parse_from([
            "patronus", "-c", "x.yml", "query", "-c", "SELECT 1", "-d", "db"
        ])
        .is_ok());
        assert!(Cli::try_parse_from(["patronus", "-c", "x.yml", "list", "-f", "json"]).is_ok());
        assert!(Cli::try_parse_from(["patronus", "list", "-f", "nonsense"]).is_err());
    }
}
