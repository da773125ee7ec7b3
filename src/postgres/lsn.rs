//! PostgreSQL log sequence numbers (`pg_lsn`) in their textual `X/Y` form.
//!
//! PostgreSQL prints an LSN as two hexadecimal numbers separated by a slash:
//! the high 32 bits and the low 32 bits, both upper-case and without leading
//! zeros (`16/B374D848`, `0/0`).

/// Maximum number of hex digits PostgreSQL accepts in either half of an LSN.
const MAX_HALF_DIGITS: usize = 8;

/// Parses one half of an LSN: 1 to 8 hex digits, nothing else.
fn parse_half(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > MAX_HALF_DIGITS || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// Parses PostgreSQL's `X/Y` hexadecimal LSN notation into a 64-bit position.
///
/// Each half must have 1 to 8 hex digits (either case); surrounding
/// whitespace is ignored. Returns `None` for anything else.
///
/// `"0/3000060"` → `0x3000060`, `"16/B374D848"` → `0x16_B374_D848`.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = parse_half(hi)?;
    let lo = parse_half(lo)?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// Formats a 64-bit WAL position the way PostgreSQL prints a `pg_lsn`:
/// `X/Y` with upper-case hex halves and no leading zeros (`0/0`, `16/B374D848`).
pub fn format_lsn(v: u64) -> String {
    format!("{:X}/{:X}", v >> 32, v & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_examples() {
        assert_eq!(parse_lsn("0/3000060"), Some(0x300_0060));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("16/b374d848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn(" 1/0\n"), Some(1 << 32));
        assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        assert_eq!(parse_lsn("00000001/00000002"), Some((1 << 32) | 2));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "/",
            "0/",
            "/0",
            "0",
            "0/0/0",
            "G/0",
            "0/-1",
            "+1/0",
            "0 /0",
            "123456789/0",
            "0/123456789",
            "0x1/0",
        ] {
            assert_eq!(parse_lsn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_like_postgres() {
        assert_eq!(format_lsn(0), "0/0");
        assert_eq!(format_lsn(0x300_0060), "0/3000060");
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(format_lsn(u64::MAX), "FFFFFFFF/FFFFFFFF");
        assert_eq!(format_lsn(1 << 32), "1/0");
    }

    #[test]
    fn round_trips() {
        for v in [
            0u64,
            1,
            0xFFFF_FFFF,
            1 << 32,
            0x16_B374_D848,
            0xDEAD_BEEF_0000_0001,
            u64::MAX,
        ] {
            assert_eq!(parse_lsn(&format_lsn(v)), Some(v));
        }
        for s in ["0/0", "0/3000060", "16/B374D848", "FFFFFFFF/1"] {
            let v = parse_lsn(s);
            assert_eq!(v.map(format_lsn).as_deref(), Some(s));
        }
    }
}
