//! The operator CLI: every patronictl command, with the same options, prompts and tables.

pub mod cluster_role;
pub mod context;
pub mod edit;
pub mod error;
pub mod list;
pub mod member_ops;
pub mod output;
pub mod pause;
pub mod prompt;
pub mod query;
pub mod switch;

use context::{GlobalOpts, RoleFilter};
use error::CliResult;

/// The patronictl-compatible commands.
#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// Show the members of the cluster(s) as a table (patronictl list).
    #[command(after_help = "Example:\n  patronus -c node1.yml list -e")]
    List(list::ListArgs),
    /// Show the cluster as a tree of replication (patronictl topology).
    #[command(after_help = "Example:\n  patronus -c node1.yml topology")]
    Topology(list::ListArgs),
    /// Show the timeline history.
    #[command(after_help = "Example:\n  patronus -c node1.yml history -f json")]
    History {
        /// Cluster name.
        cluster: Option<String>,
        /// Output format.
        #[arg(short = 'f', long = "format", value_enum, default_value_t)]
        format: list::FormatArg,
    },
    /// Print the dynamic configuration as YAML.
    #[command(after_help = "Example:\n  patronus -c node1.yml show-config")]
    ShowConfig {
        /// Cluster name.
        cluster: Option<String>,
    },
    /// Change the dynamic configuration (validated before it is written).
    EditConfig(edit::EditArgs),
    /// Planned switchover to a replica (zero acknowledged-write loss).
    Switchover(switch::SwitchArgs),
    /// Manual failover to a named candidate.
    Failover(switch::SwitchArgs),
    /// Restart PostgreSQL on members (now or scheduled).
    Restart(member_ops::RestartArgs),
    /// Reload the configuration of members.
    #[command(after_help = "Example:\n  patronus -c node1.yml reload acme node2 --force")]
    Reload {
        /// Cluster name.
        cluster: String,
        /// Members (default: all).
        members: Vec<String>,
        /// Only members with this role.
        #[arg(short = 'r', long = "role", value_enum, default_value = "any")]
        role: RoleFilter,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Wipe and re-clone replicas.
    #[command(after_help = "Example:\n  patronus -c node1.yml reinit acme node3 --wait --force")]
    Reinit {
        /// Cluster name.
        cluster: String,
        /// Members to reinitialize.
        members: Vec<String>,
        /// Clone from the leader even when a running member is tagged `clonefrom`.
        #[arg(long = "from-leader")]
        from_leader: bool,
        /// Wait until the re-clone finished.
        #[arg(long)]
        wait: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Maintenance mode: no automatic failover.
    #[command(after_help = "Example:\n  patronus -c node1.yml pause --wait")]
    Pause {
        /// Cluster name.
        cluster: Option<String>,
        /// Wait until every member reports it.
        #[arg(long)]
        wait: bool,
    },
    /// Leave maintenance mode.
    #[command(after_help = "Example:\n  patronus -c node1.yml resume --wait")]
    Resume {
        /// Cluster name.
        cluster: Option<String>,
        /// Wait until every member reports it.
        #[arg(long)]
        wait: bool,
    },
    /// Cancel scheduled restarts or a scheduled switchover.
    #[command(
        after_help = "Examples:\n  patronus -c node1.yml flush acme node2 restart --force\n  patronus -c node1.yml flush acme switchover"
    )]
    Flush {
        /// Cluster name.
        cluster: String,
        /// Members (for restart), then `restart` or `switchover` last.
        #[arg(required = true, num_args = 1..)]
        args: Vec<String>,
        /// Only members with this role.
        #[arg(short = 'r', long = "role", value_enum, default_value = "any")]
        role: RoleFilter,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
    /// Run SQL on a member.
    Query(query::QueryArgs),
    /// Print a libpq connection string for a member.
    #[command(after_help = "Example:\n  patronus -c node1.yml dsn -r replica")]
    Dsn {
        /// Cluster name.
        cluster: Option<String>,
        /// Member role.
        #[arg(short = 'r', long = "role", value_enum)]
        role: Option<RoleFilter>,
        /// Member name.
        #[arg(short = 'm', long = "member")]
        member: Option<String>,
    },
    /// Turn the cluster into a standby cluster following a remote primary: writes
    /// `standby_cluster` (PATCH /config), the leader becomes the standby leader.
    DemoteCluster(cluster_role::DemoteArgs),
    /// Turn a standby cluster into a normal one: removes `standby_cluster` (PATCH /config),
    /// the standby leader is promoted.
    PromoteCluster(cluster_role::PromoteArgs),
    /// Delete every key of the cluster from the DCS (asks three confirmations).
    #[command(after_help = "Example:\n  patronus -c node1.yml remove acme")]
    Remove {
        /// Cluster name.
        cluster: String,
    },
}

/// Runs one operator command.
pub async fn run(g: &GlobalOpts, cmd: &CtlCommand) -> CliResult<()> {
    match cmd {
        CtlCommand::List(a) => list::list(g, a, false).await,
        CtlCommand::Topology(a) => list::list(g, a, true).await,
        CtlCommand::History { cluster, format } => {
            list::history(g, cluster.as_deref(), *format).await
        }
        CtlCommand::ShowConfig { cluster } => list::show_config(g, cluster.as_deref()).await,
        CtlCommand::EditConfig(a) => edit::edit_config(g, a).await,
        CtlCommand::Switchover(a) => switch::switch(g, a, false).await,
        CtlCommand::Failover(a) => switch::switch(g, a, true).await,
        CtlCommand::Restart(a) => member_ops::restart(g, a).await,
        CtlCommand::Reload {
            cluster,
            members,
            role,
            force,
        } => member_ops::reload(g, cluster, members, *role, *force).await,
        CtlCommand::Reinit {
            cluster,
            members,
            from_leader,
            wait,
            force,
        } => member_ops::reinit(g, cluster, members, *from_leader, *wait, *force).await,
        CtlCommand::Pause { cluster, wait } => {
            pause::pause(g, cluster.as_deref(), true, *wait).await
        }
        CtlCommand::Resume { cluster, wait } => {
            pause::pause(g, cluster.as_deref(), false, *wait).await
        }
        CtlCommand::Flush {
            cluster,
            args,
            role,
            force,
        } => {
            let (target, members) = args
                .split_last()
                .map(|(t, m)| (t.as_str(), m.to_vec()))
                .unwrap_or(("", vec![]));
            member_ops::flush(g, cluster, &members, target, *role, *force).await
        }
        CtlCommand::Query(a) => query::query(g, a).await,
        CtlCommand::Dsn {
            cluster,
            role,
            member,
        } => list::dsn(g, cluster.as_deref(), *role, member.clone()).await,
        CtlCommand::DemoteCluster(a) => cluster_role::demote(g, a).await,
        CtlCommand::PromoteCluster(a) => cluster_role::promote(g, a).await,
        CtlCommand::Remove { cluster } => query::remove(g, cluster).await,
    }
}
