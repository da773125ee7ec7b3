//! The REST API, Patroni's paths, bodies and status codes (docs/patroni-behaviour.md §3).

pub(crate) mod access;
pub(crate) mod actions;
pub(crate) mod config_routes;
pub(crate) mod failsafe;
pub(crate) mod health;
pub(crate) mod metrics;
#[cfg(test)]
mod prop_tests;
pub(crate) mod reads;
pub(crate) mod requests;
pub(crate) mod serve;
pub(crate) mod switchover;
pub(crate) mod views;

use crate::agent::Shared;
use axum::routing::{patch, post};
use axum::Router;
use std::sync::Arc;

/// Starts the REST server of an agent on `listener`, a spawned task that ends when `stop`
/// fires: [`router`] behind [`serve::serve`] with the node's TLS and allowlist. The process
/// wiring hands it to the agent (`agent::run::run_agent`); the agent never calls `api`.
pub fn spawn_server(
    sh: Arc<Shared>,
    listener: tokio::net::TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let security = sh.security.clone();
    tokio::spawn(serve::serve(listener, router(sh), security, stop));
}

/// Shared state handed to handlers.
pub type ApiState = Arc<Shared>;

/// Builds the router: reads and health checks through one fallback (any GET/HEAD/OPTIONS path),
/// protected actions on their own routes, every unsafe request through [`serve::guard`]
/// (allowlist, client certificate, Basic auth, body limits).
pub fn router(sh: Arc<Shared>) -> Router {
    let read = reads::read_or_check;
    Router::new()
        .route(
            "/config",
            patch(config_routes::patch_config)
                .put(config_routes::put_config)
                .fallback(read),
        )
        .route(
            "/switchover",
            post(switchover::post_switchover)
                .delete(switchover::delete_switchover)
                .fallback(read),
        )
        .route("/failover", post(switchover::post_failover).fallback(read))
        .route("/failsafe", post(failsafe::post_failsafe).fallback(read))
        .route(
            "/restart",
            post(actions::post_restart)
                .delete(actions::delete_restart)
                .fallback(read),
        )
        .route("/reload", post(actions::post_reload).fallback(read))
        .route(
            "/reinitialize",
            post(actions::post_reinitialize).fallback(read),
        )
        .fallback(read)
        .layer(axum::middleware::from_fn_with_state(
            sh.clone(),
            serve::guard,
        ))
        .with_state(sh)
}
