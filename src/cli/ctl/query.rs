//! `query` (SQL against a member) and `remove` (delete the cluster's keys after Patroni's
//! three confirmations).

use super::context::{Ctl, GlobalOpts, RoleFilter};
use super::error::{CliError, CliResult};
use super::prompt::ask;
use crate::dcs::Dcs;
use std::time::Duration;

/// Arguments of `query`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  patronus query acme -r replica -c 'SELECT pg_is_in_recovery()'"
)]
pub struct QueryArgs {
    /// Cluster name (default: `scope` of the config).
    pub cluster: Option<String>,
    /// SQL to run.
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,
    /// File with SQL to run (- for stdin).
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// Database name.
    #[arg(short = 'd', long = "dbname", default_value = "postgres")]
    pub dbname: String,
    /// User name (default: the config's superuser, else postgres).
    #[arg(short = 'U', long = "username")]
    pub username: Option<String>,
    /// Password (default: the config's superuser password, else PGPASSWORD).
    #[arg(long)]
    pub password: Option<String>,
    /// Run on a member with this role.
    #[arg(short = 'r', long = "role", value_enum)]
    pub role: Option<RoleFilter>,
    /// Run on this member.
    #[arg(short = 'm', long = "member")]
    pub member: Option<String>,
    /// Output format: tsv or json.
    #[arg(long = "format", default_value = "tsv")]
    pub format: String,
    /// Field delimiter for tsv.
    #[arg(long, default_value = "\t")]
    pub delimiter: String,
}

/// Runs `query`.
pub async fn query(g: &GlobalOpts, a: &QueryArgs) -> CliResult<()> {
    let sql = match (&a.command, &a.file) {
        (Some(c), None) => c.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| CliError::Failed(format!("{}: {e}", f.display())))?,
        _ => {
            return Err(CliError::Failed(
                "give exactly one of -c/--command or -f/--file".into(),
            ))
        }
    };
    let ctl = Ctl::connect(g, a.cluster.as_deref()).await?;
    let c = ctl.cluster().await?;
    let (m, host, port) = super::context::pick_member(&c, a.member.as_deref(), a.role)?;
    let su = ctl.cfg.superuser.clone();
    let user = a
        .username
        .clone()
        .or(su.as_ref().map(|s| s.0.clone()))
        .unwrap_or_else(|| "postgres".into());
    let password = a
        .password
        .clone()
        .or(su.and_then(|s| s.1))
        .or_else(|| std::env::var("PGPASSWORD").ok());
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&host)
        .port(port)
        .user(&user)
        .dbname(&a.dbname)
        .connect_timeout(Duration::from_secs(5));
    if let Some(p) = &password {
        cfg.password(p);
    }
    // libpq's default, sslmode=prefer: TLS when the server offers it, unverified.
    let ssl = crate::config::PgSsl::default();
    crate::postgres::ssl::configure(&mut cfg, &ssl);
    let failed =
        |e: &dyn std::fmt::Display| CliError::Failed(format!("cannot connect to {}: {e}", m.name));
    let connector = crate::postgres::ssl::connector(&ssl).map_err(|e| failed(&e))?;
    let client = connector.connect(&cfg).await.map_err(|e| failed(&e))?;
    let msgs = client
        .simple_query(&sql)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut header_done = false;
    let mut rows_json = Vec::new();
    for msg in msgs {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = msg {
            let cols: Vec<String> = row.columns().iter().map(|c| c.name().to_string()).collect();
            let vals: Vec<Option<String>> = (0..cols.len())
                .map(|i| row.get(i).map(str::to_string))
                .collect();
            if a.format == "json" {
                let obj: serde_json::Map<String, serde_json::Value> = cols
                    .iter()
                    .cloned()
                    .zip(vals.iter().map(|v| serde_json::json!(v)))
                    .collect();
                rows_json.push(serde_json::Value::Object(obj));
            } else {
                if !header_done {
                    println!("{}", cols.join(&a.delimiter));
                    header_done = true;
                }
                let line: Vec<String> = vals
                    .into_iter()
                    .map(|v| v.unwrap_or_else(|| "NULL".into()))
                    .collect();
                println!("{}", line.join(&a.delimiter));
            }
        }
    }
    if a.format == "json" {
        println!("{}", serde_json::Value::Array(rows_json));
    }
    Ok(())
}

/// Runs `remove`: cluster name, "Yes I am aware", and the leader's name when it is healthy.
pub async fn remove(g: &GlobalOpts, cluster: &str) -> CliResult<()> {
    let ctl = Ctl::connect(g, Some(cluster)).await?;
    let c = ctl.cluster().await?;
    let name = ask("Please confirm the cluster name to remove: ")?;
    if name != cluster {
        return Err(CliError::Aborted(
            "Cluster names specified do not match".into(),
        ));
    }
    let phrase = ask(&format!(
        "You are about to remove all information in DCS for {cluster}, please type: \"Yes I am aware\": "
    ))?;
    if phrase != "Yes I am aware" {
        return Err(CliError::Aborted(
            "You did not exactly type \"Yes I am aware\"".into(),
        ));
    }
    if let Some(leader) = c.leader_name() {
        if c.member(leader).is_some_and(|m| m.data.is_running()) {
            let l = ask(
                "This cluster currently is healthy. Please specify the leader name to continue: ",
            )?;
            if l != leader {
                return Err(CliError::Aborted(
                    "You did not specify the current leader of the cluster".into(),
                ));
            }
        }
    }
    ctl.dcs.remove_cluster().await?;
    println!("Cluster {cluster} removed from the DCS");
    Ok(())
}
