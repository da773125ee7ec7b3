//! The REST server's accept loop, plain HTTP or HTTPS only (a plain request on a TLS port
//! fails its handshake and is never served), HTTP/1.1 with keep-alive. Each request carries
//! a [`ConnInfo`] extension (peer address, verified client certificate) for the access
//! check. Limits: the TLS handshake and every request's headers must arrive within
//! [`HEADER_TIMEOUT`]; unsafe requests' bodies are capped at [`BODY_LIMIT`] and must arrive
//! within [`BODY_TIMEOUT`].

use super::access::{self, Caller, Policy};
use super::ApiState;
use crate::tls::security::{resolve_host, url_host, ApiSecurity};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Time allowed for the TLS handshake and for each request's headers (also the idle time of
/// a keep-alive connection between requests).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest request body accepted (the biggest real one, a full `PUT /config`, is a few KiB).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Bodies over [`BODY_LIMIT`] up to this size are read (and dropped) before the 413.
const DRAIN_LIMIT: usize = 1024 * 1024;
/// Time allowed to receive a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Facts about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The client presented a certificate the CA verified.
    pub client_cert: bool,
}

/// Serves `router` on `listener` until `stop` flips, over TLS when the security settings
/// hold a server configuration (read per connection, so a reload applies to new ones).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    security: Arc<ApiSecurity>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("REST API accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let tls = security.server_tls();
        let (router, stop) = (router.clone(), stop.clone());
        tokio::spawn(async move {
            let Some(config) = tls else {
                let info = ConnInfo {
                    peer,
                    client_cert: false,
                };
                return serve_connection(stream, info, router, stop).await;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let stream = match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!("TLS handshake with {peer} failed: {e}"),
                Err(_) => return tracing::debug!("TLS handshake with {peer} timed out"),
            };
            let client_cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            let info = ConnInfo { peer, client_cert };
            serve_connection(stream, info, router, stop).await;
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    info: ConnInfo,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = tower::ServiceExt::map_request(router, move |mut req: Request<_>| {
        req.extensions_mut().insert(info);
        req
    });
    let service = hyper_util::service::TowerToHyperService::new(service);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("REST connection from {} ended: {e}", info.peer);
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Middleware of every request: unsafe methods pass Patroni's access check, then their
/// body is read within the size and time limits; safe methods go straight through.
pub async fn guard(State(sh): State<ApiState>, req: Request, next: Next) -> Response {
    if !access::is_unsafe(req.method()) {
        return next.run(req).await;
    }
    if let Err(denied) = check_access(&sh, Facts::of(&req)).await {
        return denied;
    }
    match limited_body(req).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// What the access check reads of a request (owned: the body is not `Sync`).
struct Facts {
    info: Option<ConnInfo>,
    method: Method,
    path: String,
    authorization: Option<String>,
}

impl Facts {
    fn of(req: &Request) -> Facts {
        Facts {
            info: req.extensions().get::<ConnInfo>().copied(),
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            authorization: req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

async fn check_access(sh: &ApiState, facts: Facts) -> Result<(), Response> {
    let Facts {
        info,
        method,
        path,
        authorization,
    } = facts;
    let node = sh.node();
    let allowlist = sh.security.allowlist();
    let mut policy = Policy {
        allowlist: &allowlist,
        include_members: node.restapi.allowlist_include_members,
        member_ips: &[],
        cert_needed: node.restapi.certfile.is_some()
            && node.restapi.verify_client != crate::tls::ClientCertMode::None,
        auth: node.restapi.authentication.as_ref(),
    };
    let member_ips = if access::members_apply(&policy, &path) {
        member_ips(sh).await
    } else {
        Vec::new()
    };
    policy.member_ips = &member_ips;
    let peer = info.map_or(IpAddr::from([127, 0, 0, 1]), |i| i.peer.ip());
    let caller = Caller {
        method: &method,
        path: &path,
        peer,
        client_cert: info.is_some_and(|i| i.client_cert),
        authorization: authorization.as_deref(),
    };
    access::decide(&policy, &caller).map_err(|denial| refusal(denial, &method, &path, peer))
}

fn refusal(denial: access::Denial, method: &Method, path: &str, peer: IpAddr) -> Response {
    if denial.status() == 403 {
        tracing::warn!("{method} {path} from {peer}: {}", denial.text());
    }
    let code = StatusCode::from_u16(denial.status()).unwrap_or(StatusCode::FORBIDDEN);
    if code == StatusCode::UNAUTHORIZED {
        let realm = [(header::WWW_AUTHENTICATE, "Basic realm=\"Patroni\"")];
        (code, realm, denial.text()).into_response()
    } else {
        (code, denial.text()).into_response()
    }
}

/// The addresses of every member's `api_url` and `conn_url` host (names resolved).
async fn member_ips(sh: &ApiState) -> Vec<IpAddr> {
    let Some(cluster) = sh.status().cluster else {
        return Vec::new();
    };
    let hosts: Vec<String> = cluster
        .members
        .iter()
        .flat_map(|m| [url_host(&m.data.api_url), url_host(&m.data.conn_url)])
        .flatten()
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut ips: Vec<IpAddr> = hosts
            .iter()
            .filter_map(|h| resolve_host(h).ok())
            .flatten()
            .collect();
        ips.sort();
        ips.dedup();
        ips
    })
    .await
    .unwrap_or_default()
}

/// The request with its body read into memory, or a 413/408 naming the limit. A body over
/// the limit but under [`DRAIN_LIMIT`] is read before the 413 so that the client, still
/// sending, gets the answer rather than a reset connection.
async fn limited_body(req: Request) -> Result<Request, Response> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than the limit of {BODY_LIMIT} bytes"),
        )
            .into_response()
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, DRAIN_LIMIT)).await;
    match read {
        Ok(Ok(bytes)) if bytes.len() <= BODY_LIMIT => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        Ok(_) => Err(too_large()),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "Request body not received within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        )
            .into_response()),
    }
}
