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

/// An allowlist entry: an address (a network of one) or a CIDR network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`; None when it is not an address
    /// (a host name, to resolve) and Err for a malformed network.
    pub fn parse(text: &str) -> Result<Option<Network>, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let Ok(addr) = addr.trim_matches(['[', ']']).parse::<IpAddr>() else {
            return match prefix {
                Some(_) => Err(format!("'{text}' is not a network (address/prefix)")),
                None => Ok(None),
            };
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("'{text}': prefix length must be 0..={max}")),
            },
        };
        Ok(Some(Network {
            addr: addr.to_canonical(),
            prefix,
        }))
    }

    /// A network of exactly `addr`.
    pub fn host(addr: IpAddr) -> Network {
        let addr = addr.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Network { addr, prefix }
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                self.prefix,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(net: u128, ip: u128, prefix: u8, bits: u32) -> bool {
    let shift = bits - u32::from(prefix);
    shift >= bits || (net >> shift) == (ip >> shift)
}

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
