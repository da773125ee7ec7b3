//! `list`, `topology`, `history`, `show-config`, `dsn`, `version`.

use super::context::{select_members, Ctl, GlobalOpts, RoleFilter};
use super::error::{CliError, CliResult};
use super::output::{render_history, render_list, Format, ListOptions};
use crate::api::views::cluster_json;
use std::time::Duration;

/// Output format choice (`-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum FormatArg {
    /// Box table.
    #[default]
    Pretty,
    /// Tab-separated values.
    Tsv,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// YAML (alias).
    Yml,
}

impl FormatArg {
    /// The renderer's format.
    pub fn format(self) -> Format {
        match self {
            FormatArg::Pretty => Format::Pretty,
            FormatArg::Tsv => Format::Tsv,
            FormatArg::Json => Format::Json,
            FormatArg::Yaml | FormatArg::Yml => Format::Yaml,
        }
    }
}

/// Arguments of `list` / `topology`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Cluster names (default: `scope` of the config).
    pub clusters: Vec<String>,
    /// Show every column (pending restart, scheduled restart, tags).
    #[arg(short = 'e', long)]
    pub extended: bool,
    /// Print a timestamp first.
    #[arg(short = 't', long)]
    pub timestamp: bool,
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value_t)]
    pub format: FormatArg,
    /// Watch: redraw every 2 seconds.
    #[arg(short = 'W')]
    pub watch_default: bool,
    /// Watch: redraw every N seconds.
    #[arg(short = 'w', long = "watch", value_name = "N")]
    pub watch: Option<f64>,
}

async fn render_one(
    g: &GlobalOpts,
    cluster: Option<&str>,
    a: &ListArgs,
    topology: bool,
) -> CliResult<String> {
    let ctl = Ctl::connect(g, cluster).await?;
    let c = ctl.cluster().await?;
    let json = cluster_json(&c, &ctl.scope);
    let opts = ListOptions {
        extended: a.extended,
        timestamp: a
            .timestamp
            .then(|| chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()),
        topology,
    };
    Ok(render_list(
        &ctl.scope,
        c.initialize.as_deref(),
        &json,
        &a.format.format(),
        &opts,
    ))
}

/// Runs `list` (or `topology`), once or in watch mode.
pub async fn list(g: &GlobalOpts, a: &ListArgs, topology: bool) -> CliResult<()> {
    let interval = a.watch.or(a.watch_default.then_some(2.0));
    loop {
        let mut out = String::new();
        let names: Vec<Option<&str>> = if a.clusters.is_empty() {
            vec![None]
        } else {
            a.clusters.iter().map(|s| Some(s.as_str())).collect()
        };
        for name in names {
            out.push_str(&render_one(g, name, a, topology).await?);
        }
        match interval {
            None => {
                print!("{out}");
                return Ok(());
            }
            Some(secs) => {
                // Redraw in place: clear the screen, print, wait.
                print!("\x1b[H\x1b[2J{out}");
                tokio::time::sleep(Duration::from_secs_f64(secs.max(0.5))).await;
            }
        }
    }
}

/// `history`.
pub async fn history(g: &GlobalOpts, cluster: Option<&str>, fmt: FormatArg) -> CliResult<()> {
    let ctl = Ctl::connect(g, cluster).await?;
    let c = ctl.cluster().await?;
    let h = c.history_raw.unwrap_or_else(|| serde_json::json!([]));
    print!("{}", render_history(&ctl.scope, &h, &fmt.format()));
    Ok(())
}

/// `show-config`.
pub async fn show_config(g: &GlobalOpts, cluster: Option<&str>) -> CliResult<()> {
    let ctl = Ctl::connect(g, cluster).await?;
    let c = ctl.cluster().await?;
    let cfg = c
        .config
        .map(|v| v.value)
        .unwrap_or_else(|| serde_json::json!({}));
    print!(
        "{}",
        serde_yaml::to_string(&cfg).map_err(|e| CliError::Failed(e.to_string()))?
    );
    Ok(())
}

/// `dsn`: libpq keyword string for a member (leader by default).
pub async fn dsn(
    g: &GlobalOpts,
    cluster: Option<&str>,
    role: Option<RoleFilter>,
    member: Option<String>,
) -> CliResult<()> {
    let ctl = Ctl::connect(g, cluster).await?;
    let c = ctl.cluster().await?;
    let (_, host, port) = super::context::pick_member(&c, member.as_deref(), role)?;
    println!("host={host} port={port}");
    Ok(())
}

/// `version`: ours, and each member's Patroni-compatible and PostgreSQL versions.
pub async fn version(g: &GlobalOpts, cluster: Option<&str>, members: &[String]) -> CliResult<()> {
    println!(
        "patronus version {} (patronictl compatible)",
        env!("CARGO_PKG_VERSION")
    );
    if cluster.is_none() && g.config_file.is_none() {
        return Ok(());
    }
    let ctl = Ctl::connect(g, cluster).await?;
    let c = ctl.cluster().await?;
    for m in select_members(&c, members, RoleFilter::Any)? {
        match ctl.request(m, reqwest::Method::GET, "/patroni", None).await {
            Ok((200, body)) => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let pv = v["patroni"]["version"].as_str().unwrap_or("?");
                let sv = v["server_version"].as_i64().unwrap_or(0);
                println!(
                    "{}: Patroni {pv} PostgreSQL {}.{}",
                    m.name,
                    sv / 10000,
                    sv % 10000
                );
            }
            Ok((code, _)) => println!("{}: failed to get version: status {code}", m.name),
            Err(e) => println!("{}: failed to get version: {e}", m.name),
        }
    }
    Ok(())
}
