//! PostgreSQL version texts as numbers, the way `server_version_num` counts them.

/// PostgreSQL version text (`15`, `15.4`, `9.6.2`) → server_version_num; None if invalid.
pub fn version_number(v: &str) -> Option<i64> {
    let parts: Vec<i64> = v
        .trim()
        .split('.')
        .map(|p| p.parse::<u32>().ok().map(i64::from))
        .collect::<Option<_>>()?;
    // Parts are u32, so no product or sum below can overflow an i64.
    match parts.as_slice() {
        [major] if *major >= 10 => Some(major * 10000),
        [major, minor] if *major >= 10 => Some(major * 10000 + minor),
        [major, minor] => Some(major * 10000 + minor * 100),
        [major, minor, patch] => Some(major * 10000 + minor * 100 + patch),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_never_overflow() {
        assert_eq!(version_number("15"), Some(150000));
        assert_eq!(version_number("15.4"), Some(150004));
        assert_eq!(version_number("9.6.2"), Some(90602));
        assert_eq!(version_number("922337203685477.0"), None);
        assert_eq!(
            version_number("4294967295.4294967295"),
            Some(4_294_967_295 * 10_000 + 4_294_967_295)
        );
        assert_eq!(version_number("-1"), None);
        assert_eq!(version_number("x"), None);
    }
}
