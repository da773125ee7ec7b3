//! `patronus reconcile --repo PATH`: the GitOps daemon in the foreground.

use crate::cli::ctl::context::GlobalOpts;
use crate::cli::exit_code::Exit;
use crate::gitops::connection::ConnectionSource;
use crate::gitops::reconcile::daemon::{ReconcileOptions, Reconciler};
use crate::gitops::GitopsError;
use std::path::PathBuf;

/// Arguments of `reconcile`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  patronus reconcile --repo /srv/desired-state\n\nEach new commit is validated, planned and applied within a second; live changes to managed\nkeys are reported as drift (and reverted when patronus.yaml says so); the observed state is\ncommitted back under status/<scope>/."
)]
pub struct ReconcileArgs {
    /// The desired-state repository: a local checkout, or a URL (file://, or the path of a
    /// bare repository) that is cloned into --workdir, fetched, and pushed back to.
    #[arg(long)]
    pub repo: String,
    /// Work directory for the clone of a remote repository.
    #[arg(long, default_value = "/var/tmp/patronus-reconcile")]
    pub workdir: PathBuf,
    /// Seconds between fetches of a remote repository (POST /hooks/git fetches at once).
    #[arg(long = "fetch-interval", default_value_t = 10)]
    pub fetch_interval: u64,
    /// etcd endpoints (host:port, comma-separated); default from -c, PATRONI_ETCD3_HOSTS,
    /// patronus.yaml.
    #[arg(long, value_delimiter = ',')]
    pub etcd: Option<Vec<String>>,
    /// How many clusters' DCS reads and writes run at once (a fleet of hundreds of clusters
    /// is read and applied this many at a time).
    #[arg(long, default_value_t = crate::gitops::reconcile::daemon::DEFAULT_CONCURRENCY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub concurrency: usize,
    /// Do not commit observed state back.
    #[arg(long = "no-commit-back")]
    pub no_commit_back: bool,
    /// Serve GET /status, GET /metrics, POST /hooks/git and the web dashboard (GET /) on
    /// this address.
    #[arg(long)]
    pub listen: Option<String>,
    /// Secure --listen with the `restapi:` section of this YAML file (the agent's REST API
    /// settings; a patroni.yml works as is): `certfile`/`keyfile` serve HTTPS only,
    /// `authentication` requires Basic auth on every request.
    #[arg(long = "listen-security", requires = "listen")]
    pub listen_security: Option<PathBuf>,
    /// This reconciler's identity, unique among the reconcilers of one repository (default:
    /// host name and process id). Several reconcilers elect one active per cluster through
    /// the cluster's `gitops-lock` key in etcd; the others observe.
    #[arg(long)]
    pub id: Option<String>,
    /// Seconds the lease of a cluster's `gitops-lock` lives without renewal: a survivor takes
    /// a dead reconciler's clusters over within this time (plus at most a second).
    #[arg(long = "lock-ttl", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lock_ttl: u64,
}

/// Runs the daemon until SIGINT/SIGTERM. etcd and the agents are reached with the settings
/// of the global `-c` file and the `PATRONI_ETCD3_*` / `PATRONI_CTL_*` variables (see
/// [`crate::gitops::connection`]).
pub async fn run(g: &GlobalOpts, a: &ReconcileArgs) -> Result<Exit, GitopsError> {
    let env = crate::gitops::connection::process_env();
    let connection = ConnectionSource::load(g.config_file.as_deref(), g.dcs_url.as_deref(), &env)?
        .with_insecure(g.insecure);
    let local = std::path::Path::new(&a.repo);
    let is_checkout = !a.repo.contains("://") && local.join(".git").exists();
    let opts = ReconcileOptions {
        repo: if is_checkout {
            local.to_path_buf()
        } else {
            a.workdir.clone()
        },
        hosts: a.etcd.clone(),
        connection,
        commit_back: !a.no_commit_back,
        remote: (!is_checkout).then(|| a.repo.clone()),
        fetch_interval: std::time::Duration::from_secs(a.fetch_interval.max(1)),
        id: a
            .id
            .clone()
            .unwrap_or_else(crate::gitops::reconcile::lock::default_id),
        lock_ttl: a.lock_ttl,
        concurrency: a.concurrency,
    };
    if opts.id.trim().is_empty() {
        return Err(GitopsError::Other(
            "--id: must not be empty (it names this reconciler in the gitops-lock keys)".into(),
        ));
    }
    let r = Reconciler::new(opts)?;
    if let Some(addr) = &a.listen {
        crate::gitops::dashboard::listen::serve(
            addr,
            r.board.clone(),
            a.listen_security.as_deref(),
        )
        .await?;
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut t), Ok(mut i)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        let _ = tx.send(true);
    });
    r.run(rx).await?;
    Ok(Exit::Success)
}
