//! A simulated member's agent is the real one: the real [`Driver`] (the agent machine, its
//! effects and background tasks) on ports over the simulated world — the DCS
//! ([`super::dcs::SimDcs`]), PostgreSQL control and SQL ([`super::pg`], [`super::sql`]),
//! the peers' `/patroni` (answered by the peers' real handler), the fence and the clock.

use super::dcs::SimDcs;
use super::model::{Agent, EventKind, TraceEntry};
use super::pg::SimControl;
use super::sql::SimSql;
use super::world::World;
use crate::agent::ports::{Clock, Fence, Peers};
use crate::agent::shared::SharedParts;
use crate::agent::{Command, Driver, Shared};
use crate::config::node::BasicAuth;
use crate::config::NodeConfig;
use crate::ha::machine::{Effect, Input, Output, TaskResult};
use crate::postgres::Postgres;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Wall-clock time at the start of a run (the agents' clock reads it plus virtual time).
pub const EPOCH_MS: u64 = 1_750_000_000_000;

/// A running agent of the simulator.
pub struct AgentHandle {
    /// Its shared state (status, request channel).
    pub shared: Arc<Shared>,
    /// The task running its loop.
    pub task: tokio::task::JoinHandle<()>,
    /// Kept while the agent runs: the loop stops when it is dropped.
    pub _shutdown: watch::Sender<bool>,
}

/// The agents' `Shared`, for the peers' `/patroni` answers.
pub type Registry = Arc<RwLock<Vec<Weak<Shared>>>>;

/// The node file of member `i`.
fn node_config(world: &World, i: usize) -> NodeConfig {
    let m = &world.lock().members[i];
    let mut node = NodeConfig {
        name: m.name.clone(),
        scope: "sim".into(),
        tags: m.tags(),
        ..NodeConfig::default()
    };
    node.restapi.connect_address = format!("{}:8008", m.name);
    node.postgresql.connect_address = format!("{}:5432", m.name);
    node.postgresql.data_dir = format!("/nonexistent/patronus-sim/{}", m.name).into();
    match world.cfg.fence_margin_ms {
        Some(ms) => node.fence.safety_margin = (ms / 1000) as i64,
        None => node.fence.mode = "off".into(),
    }
    node
}

/// Starts generation `gen` of member `i`'s agent after `delay_ms`.
pub fn spawn(
    local: &tokio::task::LocalSet,
    world: &Arc<World>,
    registry: &Registry,
    i: usize,
    gen: u64,
    delay_ms: u64,
) -> AgentHandle {
    let node = node_config(world, i);
    let security = match crate::tls::security::ApiSecurity::load(&node) {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("the simulated node's API settings: {e}"),
    };
    let pg = match Postgres::new(crate::agent::run::pg_settings(&node)) {
        Ok(pg) => Arc::new(pg),
        Err(e) => panic!("the simulated node's PostgreSQL settings: {e}"),
    };
    let (commands, rx) = mpsc::unbounded_channel::<Command>();
    let sh = Arc::new(Shared::new(SharedParts {
        node,
        dcs: Arc::new(SimDcs::new(world.clone(), i, gen)),
        pg,
        ctl: Arc::new(SimControl::new(world.clone(), i, gen)),
        sql: Arc::new(SimSql::new(world.clone(), i, gen)),
        security,
        peers: Arc::new(SimPeers {
            world: world.clone(),
            registry: registry.clone(),
        }),
        clock: Arc::new(VirtualClock(world.clone())),
        commands,
    }));
    if let Ok(mut r) = registry.write() {
        r[i] = Arc::downgrade(&sh);
    }
    let fence = world.cfg.fence_margin_ms.map(|_| {
        Box::new(SimFence {
            world: world.clone(),
            i,
            gen,
        }) as Box<dyn Fence>
    });
    let driver = Driver::new(sh.clone(), rx)
        .with_fence(fence)
        .with_observer(observer(world.clone(), i));
    let (shutdown, stop) = watch::channel(false);
    let w = world.clone();
    // The loop is not `Send` (the watchdog device): it runs on the simulator's local set.
    let task = local.spawn_local(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if let Err(e) = driver.run(stop).await {
            let mut st = w.lock();
            st.members[i].fatal = Some(e.to_string());
            st.members[i].agent = Agent::Dead;
        }
    });
    AgentHandle {
        shared: sh,
        task,
        _shutdown: shutdown,
    }
}

/// Records member `i`'s decisions (the trace) and the ends of its tasks (events).
fn observer(world: Arc<World>, i: usize) -> crate::agent::driver::StepObserver {
    Box::new(move |input: &Input, out: &Output| {
        let mut st = world.lock();
        match input {
            Input::Observed(_) => {
                let actions = out.effects.iter().filter_map(|e| match e {
                    Effect::Act(a) => Some(a.clone()),
                    Effect::CancelTask(_) | Effect::Stop(_) => None,
                });
                let entry = TraceEntry {
                    at: world.now(),
                    member: st.members[i].name.clone(),
                    message: out.message.clone().unwrap_or_default(),
                    actions: actions.collect(),
                };
                st.trace.push(entry);
            }
            Input::TaskFinished { kind, result, .. } => {
                let (ok, message) = match result {
                    TaskResult::Succeeded(m) => (true, m.clone()),
                    TaskResult::Failed { message, .. } => (false, message.clone()),
                };
                let kind = EventKind::TaskEnded {
                    kind: *kind,
                    ok,
                    message,
                };
                world.event(&mut st, i, kind);
            }
            _ => {}
        }
    })
}

/// The agents' wall clock: the epoch of the run plus virtual time.
struct VirtualClock(Arc<World>);

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        EPOCH_MS + self.0.now()
    }
}

/// The fence process of member `i`: armed, it kills PostgreSQL at its deadline (the
/// world's tick fires it), whatever the agent is doing.
struct SimFence {
    world: Arc<World>,
    i: usize,
    gen: u64,
}

#[async_trait]
impl Fence for SimFence {
    async fn arm(&mut self, within: Duration) -> Result<(), String> {
        self.world.gate(self.i, self.gen).await;
        let deadline = self.world.now() + within.as_millis() as u64;
        self.world.lock().members[self.i].fence_deadline = Some(deadline);
        Ok(())
    }

    async fn disarm(&mut self) -> Result<(), String> {
        self.world.gate(self.i, self.gen).await;
        self.world.lock().members[self.i].fence_deadline = None;
        Ok(())
    }
}

/// The other members' REST API: `GET /patroni` is answered by the member's real handler
/// when its agent is alive; a frozen or dead agent does not answer.
struct SimPeers {
    world: Arc<World>,
    registry: Registry,
}

#[async_trait]
impl Peers for SimPeers {
    async fn get_json(&self, url: &str, timeout: Duration) -> Option<Value> {
        let host = url.split("://").nth(1)?.split(':').next()?.to_string();
        let (i, agent) = {
            let st = self.world.lock();
            let i = st.members.iter().position(|m| m.name == host)?;
            (i, st.members[i].agent)
        };
        match agent {
            // A killed agent's port is closed: refused at once.
            Agent::Dead => None,
            // A stopped process accepts the connection but never answers.
            Agent::Frozen => {
                tokio::time::sleep(timeout).await;
                None
            }
            Agent::Alive => {
                let sh = self.registry.read().ok()?.get(i)?.upgrade()?;
                Some(crate::api::reads::patroni_body(&sh).await)
            }
        }
    }

    async fn post_json(
        &self,
        _url: &str,
        _body: &Value,
        _auth: Option<&BasicAuth>,
        _timeout: Duration,
    ) -> Result<(u16, String), String> {
        Err("the simulator does not model REST requests between members".into())
    }
}
