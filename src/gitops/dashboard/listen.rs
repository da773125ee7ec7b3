//! The reconciler's `--listen` server: `/status`, `/metrics`, `/hooks/git` and the
//! dashboard, optionally over TLS and behind Basic auth with the agent's REST API settings
//! (the `restapi:` section of a Patroni-style file: `certfile`, `keyfile`,
//! `keyfile_password`, `cafile`, `verify_client`, `authentication`), served by the agent's
//! own accept loop ([`crate::api::serve::serve`]).

use crate::api::access::check_basic;
use crate::config::{BasicAuth, NodeConfig};
use crate::gitops::reconcile::api::StatusBoard;
use crate::gitops::GitopsError;
use crate::tls::security::ApiSecurity;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::Path;
use std::sync::Arc;

/// Reads the `restapi:` section of `file` (a patroni.yml works as is).
pub fn load_settings(file: &Path) -> Result<NodeConfig, GitopsError> {
    let bad =
        |why: String| GitopsError::Other(format!("--listen-security {}: {why}", file.display()));
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let tree = crate::config::yaml::parse_yaml_str(&text).map_err(|e| bad(e.to_string()))?;
    let section = tree
        .get("restapi")
        .cloned()
        .ok_or_else(|| bad("no restapi: section".into()))?;
    let restapi: crate::config::RestApiConfig = serde_path_to_error::deserialize(section)
        .map_err(|e| bad(format!("restapi.{}: {}", e.path(), e.inner())))?;
    for key in not_applied(&restapi) {
        tracing::warn!(
            "--listen-security {}: restapi.{key} is not applied to the reconciler's listener",
            file.display()
        );
    }
    Ok(NodeConfig {
        restapi,
        ..NodeConfig::default()
    })
}

/// Security keys of the agent's `restapi` that this listener does not act on (set in the file).
fn not_applied(r: &crate::config::RestApiConfig) -> Vec<&'static str> {
    let mut keys = vec![];
    if !r.allowlist.is_empty() {
        keys.push("allowlist");
    }
    if r.allowlist_include_members {
        keys.push("allowlist_include_members");
    }
    if r.ciphers.is_some() {
        keys.push("ciphers");
    }
    keys
}

/// Every request must carry the credentials (the whole listener: status, metrics, hooks
/// and pages); a browser is asked for them.
async fn require_basic(auth: Arc<BasicAuth>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match check_basic(Some(&auth), header) {
        Ok(()) => next.run(req).await,
        Err(denial) => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"patronus reconciler\"",
            )],
            denial.text(),
        )
            .into_response(),
    }
}

/// Binds `addr` and serves until the process ends; `security` secures it when given.
pub async fn serve(
    addr: &str,
    board: Arc<StatusBoard>,
    security: Option<&Path>,
) -> Result<(), GitopsError> {
    let node = match security {
        Some(f) => load_settings(f)?,
        None => NodeConfig::default(),
    };
    let sec = ApiSecurity::load(&node)
        .map_err(|e| GitopsError::Other(format!("--listen-security: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| GitopsError::Other(format!("cannot listen on {addr}: {e}")))?;
    let mut app = crate::gitops::reconcile::api::router(board.clone())
        .merge(super::router(super::Dashboard::start(board)));
    if let Some(auth) = node.restapi.authentication.clone().map(Arc::new) {
        app = app.layer(axum::middleware::from_fn(move |req, next| {
            require_basic(auth.clone(), req, next)
        }));
    }
    let scheme = if sec.server_tls().is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!("reconciler API and dashboard on {scheme}://{addr}/");
    let (keep, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::api::serve::serve(listener, app, Arc::new(sec), stop).await;
        drop(keep);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<NodeConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("listen.yml");
        std::fs::write(&f, text).unwrap();
        load_settings(&f).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_the_restapi_section() {
        let n = load("scope: x\nrestapi:\n  certfile: /a.crt\n  authentication:\n    username: ops\n    password: pw\n")
            .unwrap();
        assert_eq!(n.restapi.certfile.as_deref(), Some(Path::new("/a.crt")));
        assert_eq!(n.restapi.authentication.clone().unwrap().username, "ops");
        assert!(not_applied(&n.restapi).is_empty());
        let n = load("restapi:\n  allowlist: [10.0.0.0/8]\n  ciphers: HIGH\n").unwrap();
        assert_eq!(not_applied(&n.restapi), vec!["allowlist", "ciphers"]);
    }

    #[test]
    fn bad_files_name_file_and_field() {
        let e = load("scope: x\n").unwrap_err();
        assert!(
            e.contains("listen.yml") && e.contains("no restapi: section"),
            "{e}"
        );
        let e = load("restapi:\n  authentication: yes\n").unwrap_err();
        assert!(e.contains("restapi.authentication"), "{e}");
        let e = load("restapi: [1\n").unwrap_err();
        assert!(e.contains("listen.yml"), "{e}");
    }
}
