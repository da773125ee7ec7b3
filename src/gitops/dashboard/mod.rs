//! The web dashboard on the reconciler's `--listen` address: a server-rendered fleet page
//! (`/`) and one page per cluster (`/clusters/<scope>`), refreshed in place every half second by
//! a small bundled script (no CDN, works offline), light and dark themes, read-only. Every
//! page is a pure function of the status document ([`crate::gitops::reconcile::api::StatusBoard`],
//! already redacted of secrets) and of the in-memory lag history; every user-written text
//! goes through [`escape::html`].

pub(crate) mod activity;
pub mod cluster;
pub(crate) mod diff;
pub(crate) mod escape;
pub mod fleet;
pub(crate) mod listen;
pub(crate) mod model;
pub(crate) mod page;
pub(crate) mod samples;
pub(crate) mod svg;

use crate::gitops::reconcile::api::StatusBoard;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use samples::LagHistory;
use std::sync::{Arc, RwLock};

/// What the pages read: the status document and the lag history.
#[derive(Clone)]
pub struct Dashboard {
    board: Arc<StatusBoard>,
    lags: Arc<RwLock<LagHistory>>,
}

impl Dashboard {
    /// A dashboard over `board`, with its lag sampler started.
    pub fn start(board: Arc<StatusBoard>) -> Dashboard {
        let lags = Arc::new(RwLock::new(LagHistory::default()));
        samples::spawn_sampler(board.clone(), lags.clone());
        Dashboard { board, lags }
    }

    /// Renders from the status document under its read lock (no copy of the document).
    fn with_doc<T>(&self, f: impl FnOnce(&serde_json::Value) -> T) -> T {
        match self.board.doc.read() {
            Ok(d) => f(&d),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn fleet(&self) -> String {
        self.with_doc(|d| fleet::fleet_main(d, chrono::Utc::now()))
    }

    fn cluster(&self, scope: &str) -> Option<String> {
        let lags = self
            .lags
            .read()
            .map(|l| l.cluster(scope))
            .unwrap_or_default();
        self.with_doc(|d| cluster::cluster_main(d, scope, &lags, chrono::Utc::now()))
    }
}

/// An HTML response that is never cached and can load nothing from elsewhere.
fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn not_found(scope: &str) -> Response {
    let body = format!(
        "<h1>No cluster {}</h1><p>This reconciler manages no cluster of that name. <a href=\"/\">Back to the fleet</a>.</p>",
        escape::html(scope)
    );
    html_response(
        StatusCode::NOT_FOUND,
        page::page("not found", "", "", &body),
    )
}

/// The dashboard's routes (GET only).
pub fn router(d: Dashboard) -> Router {
    let (d1, d2, d3, d4) = (d.clone(), d.clone(), d.clone(), d);
    Router::new()
        .route(
            "/",
            get(move || async move {
                let body = page::page("fleet", "/ui/fleet", fleet::FILTER, &d1.fleet());
                html_response(StatusCode::OK, body)
            }),
        )
        .route(
            "/ui/fleet",
            get(move || async move { html_response(StatusCode::OK, d2.fleet()) }),
        )
        .route(
            "/clusters/{scope}",
            get(move |Path(scope): Path<String>| async move {
                match d3.cluster(&scope) {
                    Some(main) => {
                        let url = format!("/ui/clusters/{}", escape::path_segment(&scope));
                        html_response(StatusCode::OK, page::page(&scope, &url, "", &main))
                    }
                    None => not_found(&scope),
                }
            }),
        )
        .route(
            "/ui/clusters/{scope}",
            get(move |Path(scope): Path<String>| async move {
                match d4.cluster(&scope) {
                    Some(main) => html_response(StatusCode::OK, main),
                    None => not_found(&scope),
                }
            }),
        )
        .route(
            page::CSS_PATH,
            get(|| async { asset("text/css; charset=utf-8", page::CSS) }),
        )
        .route(
            page::JS_PATH,
            get(|| async { asset("text/javascript; charset=utf-8", page::JS) }),
        )
}
