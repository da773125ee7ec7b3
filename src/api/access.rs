//! Who may call an unsafe endpoint (POST, PUT, PATCH, DELETE): Patroni's `check_access`
//! as a pure decision. In Patroni's order: the source address must be in
//! `restapi.allowlist` (or, with `allowlist_include_members`, be a member's address) else
//! 403 `Access is denied`; over HTTPS with `verify_client` `optional`/`required` a verified
//! client certificate must have been presented else 403 `client certificate required`; then
//! Basic auth (`restapi.authentication`) else 401. Safe methods are never restricted.

use crate::config::BasicAuth;
use axum::http::Method;
use base64::Engine;
use std::net::IpAddr;

use crate::tls::Network;

/// What the server enforces.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'a> {
    /// `restapi.allowlist`, resolved.
    pub allowlist: &'a [Network],
    /// `restapi.allowlist_include_members`.
    pub include_members: bool,
    /// The addresses of the members' `api_url` and `conn_url` hosts.
    pub member_ips: &'a [IpAddr],
    /// Served over HTTPS with `verify_client` `optional` or `required`.
    pub cert_needed: bool,
    /// `restapi.authentication`.
    pub auth: Option<&'a BasicAuth>,
}

/// One request as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// Path (`/failsafe` does not apply the member addresses, as in Patroni).
    pub path: &'a str,
    /// Source address of the connection.
    pub peer: IpAddr,
    /// A client certificate was presented and verified.
    pub client_cert: bool,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The source is not in the allowlist (403).
    NotAllowed,
    /// No verified client certificate (403).
    NoClientCert,
    /// No `Authorization` header (401).
    NoAuthHeader,
    /// Wrong credentials or scheme (401).
    NotAuthenticated,
}

impl Denial {
    /// HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Denial::NotAllowed | Denial::NoClientCert => 403,
            Denial::NoAuthHeader | Denial::NotAuthenticated => 401,
        }
    }

    /// Patroni's response text.
    pub fn text(self) -> &'static str {
        match self {
            Denial::NotAllowed => "Access is denied",
            Denial::NoClientCert => "client certificate required",
            Denial::NoAuthHeader => "no auth header received",
            Denial::NotAuthenticated => "not authenticated",
        }
    }
}

/// Whether `method` changes state (the methods `check_access` guards).
pub fn is_unsafe(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Whether the member addresses count for this request (not for `POST /failsafe`).
pub fn members_apply(policy: &Policy<'_>, path: &str) -> bool {
    policy.include_members && !is_failsafe(path)
}

fn is_failsafe(path: &str) -> bool {
    path.trim_start_matches('/').split('/').next() == Some("failsafe")
}

/// The decision: Ok when the request may proceed.
pub fn decide(policy: &Policy<'_>, caller: &Caller<'_>) -> Result<(), Denial> {
    if !is_unsafe(caller.method) {
        return Ok(());
    }
    let members = members_apply(policy, caller.path);
    if !policy.allowlist.is_empty() || members {
        let listed = policy.allowlist.iter().any(|n| n.contains(caller.peer));
        let member = members
            && policy
                .member_ips
                .iter()
                .any(|ip| ip.to_canonical() == caller.peer.to_canonical());
        if !listed && !member {
            return Err(Denial::NotAllowed);
        }
    }
    if policy.cert_needed && !caller.client_cert {
        return Err(Denial::NoClientCert);
    }
    check_basic(policy.auth, caller.authorization)
}

/// Basic auth against `auth` (nothing to check when it is None).
pub fn check_basic(auth: Option<&BasicAuth>, header: Option<&str>) -> Result<(), Denial> {
    let Some(auth) = auth else {
        return Ok(());
    };
    let Some(value) = header else {
        return Err(Denial::NoAuthHeader);
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return Err(Denial::NotAuthenticated);
    };
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", auth.username, auth.password));
    if constant_time_eq(encoded.trim().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Denial::NotAuthenticated)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
