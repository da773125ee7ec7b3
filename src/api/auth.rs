//! Basic authentication of the protected endpoints (`restapi.authentication`).

use super::ApiState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// None when the request may proceed; otherwise the 401 response Patroni sends.
pub fn check(sh: &ApiState, headers: &HeaderMap) -> Option<Response> {
    let auth = sh.node().restapi.authentication?;
    let deny = |msg: &'static str| {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"Patroni\"")],
                msg,
            )
                .into_response(),
        )
    };
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return deny("no auth header received");
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return deny("not authenticated");
    };
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", auth.username, auth.password));
    if constant_time_eq(encoded.trim().as_bytes(), expected.as_bytes()) {
        None
    } else {
        deny("not authenticated")
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
