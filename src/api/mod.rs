//! The REST API, Patroni's paths, bodies and status codes (reference §3).

pub mod auth;
pub mod config_routes;
pub mod health;
pub mod reads;
pub mod views;

use crate::agent::Shared;
use axum::routing::patch;
use axum::Router;
use std::sync::Arc;

/// Shared state handed to handlers.
pub type ApiState = Arc<Shared>;

/// Builds the router: reads and health checks through one fallback (any GET/HEAD/OPTIONS path),
/// protected actions on their own routes.
pub fn router(sh: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/config",
            patch(config_routes::patch_config).put(config_routes::put_config),
        )
        .fallback(reads::read_or_check)
        .with_state(sh)
}
