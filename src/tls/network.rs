//! Allowlist entries of the REST API (`restapi.allowlist`): an address or a CIDR network,
//! parsed and matched without I/O. Host names are resolved by
//! [`super::security::resolve_allowlist`].

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
