//! `patronus validate`, `plan`, `apply`: the desired-state repository against the DCS.
//!
//! Exit codes: [`crate::cli::exit_code`] (plan: `Changes` when the plan has changes).

use crate::cli::ctl::context::GlobalOpts;
use crate::cli::exit_code::Exit;
use crate::dcs::etcd::EtcdDcs;
use crate::dcs::{Dcs, Keys};
use crate::gitops::connection::ConnectionSource;
use crate::gitops::desired::{DesiredCluster, DesiredState};
use crate::gitops::error::{GitopsError, RepoProblem};
use crate::gitops::guc::GucCatalog;
use crate::gitops::observed::{load_observed, ObservedCluster};
use crate::gitops::plan::{plan_cluster, ClusterPlan};
use crate::gitops::validate::{load_and_validate, unknown_member_problems};
use crate::gitops::{apply, git, render};
use std::path::PathBuf;

/// Arguments of `plan`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  patronus plan --repo ./desired --format markdown --out plan.md\n  patronus plan --repo . --observed status/acme/observed.yaml   # offline, for CI\n\nExit codes: 0 no changes, 2 changes, 1 error."
)]
pub struct PlanArgs {
    /// Desired-state repository directory.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Only this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(long, value_parser = ["text", "json", "markdown"], default_value = "text")]
    pub format: String,
    /// Write the plan to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Observed state file(s) instead of the DCS (offline plan); repeatable.
    #[arg(long)]
    pub observed: Vec<PathBuf>,
}

/// Arguments of `apply`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  patronus apply --repo ./desired\n  patronus apply --repo ./desired --plan plan.json   # refuses a stale plan"
)]
pub struct ApplyArgs {
    /// Desired-state repository directory.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Only this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// A saved JSON plan (`plan --format json --out FILE`); refused when the DCS moved.
    #[arg(long)]
    pub plan: Option<PathBuf>,
}

fn invalid(problems: Vec<RepoProblem>) -> GitopsError {
    GitopsError::Invalid(problems)
}

/// `validate PATH`.
pub fn validate(path: &std::path::Path) -> Result<Exit, GitopsError> {
    let state = load_and_validate(path).map_err(invalid)?;
    println!(
        "{}: valid ({} cluster(s))",
        path.display(),
        state.clusters.len()
    );
    Ok(Exit::Success)
}

/// The connection settings of the GitOps commands: the -c file and the environment.
fn connection(g: &GlobalOpts) -> Result<ConnectionSource, GitopsError> {
    let env = crate::gitops::connection::process_env();
    Ok(
        ConnectionSource::load(g.config_file.as_deref(), g.dcs_url.as_deref(), &env)?
            .with_insecure(g.insecure),
    )
}

async fn connect(
    g: &GlobalOpts,
    state: &DesiredState,
    scope: &str,
) -> Result<std::sync::Arc<EtcdDcs>, GitopsError> {
    let own = state
        .clusters
        .iter()
        .find(|c| c.scope == scope)
        .and_then(|c| c.dcs.as_ref());
    let (settings, namespace) = connection(g)?.etcd_for(&state.settings, own)?;
    Ok(EtcdDcs::connect(&settings, Keys::new(&namespace, scope), false).await?)
}

fn selected<'a>(
    state: &'a DesiredState,
    only: Option<&str>,
) -> Result<Vec<&'a DesiredCluster>, GitopsError> {
    if let Some(name) = only {
        let c = state
            .clusters
            .iter()
            .find(|c| c.scope == name)
            .ok_or_else(|| {
                invalid(vec![RepoProblem::new(
                    "clusters/",
                    name,
                    format!("unknown cluster '{name}': no clusters/{name}/cluster.yaml"),
                )])
            })?;
        return Ok(vec![c]);
    }
    Ok(state.clusters.iter().collect())
}

/// Plans every selected cluster against the DCS (or the observed file).
async fn make_plans(
    g: &GlobalOpts,
    repo: &std::path::Path,
    only: Option<&str>,
    observed: &[PathBuf],
) -> Result<(DesiredState, Vec<ClusterPlan>, Vec<ObservedCluster>), GitopsError> {
    let state = load_and_validate(repo).map_err(invalid)?;
    let offline = if observed.is_empty() {
        None
    } else {
        let mut all = Vec::new();
        for p in observed {
            all.extend(load_observed(p).map_err(GitopsError::Other)?);
        }
        Some(all)
    };
    let catalog = GucCatalog::postgresql15();
    let mut plans = Vec::new();
    let mut observations = Vec::new();
    let mut problems = Vec::new();
    for c in selected(&state, only)? {
        let obs = match &offline {
            Some(list) => {
                list.iter()
                    .find(|o| o.scope == c.scope)
                    .cloned()
                    .unwrap_or(ObservedCluster {
                        scope: c.scope.clone(),
                        ..Default::default()
                    })
            }
            None => {
                let dcs = connect(g, &state, &c.scope).await?;
                ObservedCluster::from_cluster(&c.scope, &dcs.fresh_cluster().await?)
            }
        };
        if !obs.exists {
            problems.push(RepoProblem::new(
                &c.file,
                "",
                format!(
                    "unknown cluster '{}': it does not exist in the DCS",
                    c.scope
                ),
            ));
            continue;
        }
        let names: Vec<String> = obs.members.iter().map(|m| m.name.clone()).collect();
        problems.extend(unknown_member_problems(c, &names));
        plans.push(plan_cluster(c, &obs, catalog));
        observations.push(obs);
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok((state, plans, observations))
}

/// `plan`.
pub async fn plan(g: &GlobalOpts, a: &PlanArgs) -> Result<Exit, GitopsError> {
    let (_, plans, _) = make_plans(g, &a.repo, a.cluster.as_deref(), &a.observed).await?;
    let out = match a.format.as_str() {
        "json" => render::json(&plans),
        "markdown" => render::markdown(&plans),
        _ => render::text(&plans),
    };
    match &a.out {
        Some(p) => std::fs::write(p, &out)
            .map_err(|e| GitopsError::Other(format!("{}: {e}", p.display())))?,
        None => print!("{out}"),
    }
    Ok(if plans.iter().any(|p| p.changed) {
        Exit::Changes
    } else {
        Exit::Success
    })
}

/// `apply`.
pub async fn apply(g: &GlobalOpts, a: &ApplyArgs) -> Result<Exit, GitopsError> {
    let (state, fresh, observations) = make_plans(g, &a.repo, a.cluster.as_deref(), &[]).await?;
    let plans: Vec<ClusterPlan> = match &a.plan {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| GitopsError::Other(format!("{}: {e}", p.display())))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                GitopsError::Other(format!("{}: not a saved plan: {e}", p.display()))
            })?;
            serde_json::from_value(v.get("clusters").cloned().unwrap_or_default()).map_err(|e| {
                GitopsError::Other(format!("{}: not a saved plan: {e}", p.display()))
            })?
        }
        None => fresh,
    };
    let commit = git::head_commit(&state.root);
    for p in &plans {
        let obs = observations.iter().find(|o| o.scope == p.scope);
        let dcs = connect(g, &state, &p.scope).await?;
        match apply::apply_plan(
            dcs.as_ref() as &dyn Dcs,
            p,
            obs.and_then(|o| o.gitops.as_ref()),
            commit.as_ref(),
        )
        .await?
        {
            true => println!(
                "cluster {}: applied{}",
                p.scope,
                commit
                    .as_ref()
                    .map(|c| format!(" (commit {})", &c.sha[..12.min(c.sha.len())]))
                    .unwrap_or_default()
            ),
            false => println!("cluster {}: no changes", p.scope),
        }
    }
    Ok(Exit::Success)
}
