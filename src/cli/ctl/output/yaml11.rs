//! PyYAML's implicit resolvers (YAML 1.1): a plain scalar that would read back
//! as a bool, null, int, float, timestamp, merge key or value key must be
//! quoted to stay a string.

/// True when PyYAML would read `s`, written plain, as something other than a
/// string.
pub(super) fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL", "", "<<", "=",
    ];
    WORDS.contains(&s)
        || is_int(s.as_bytes())
        || is_float(s.as_bytes())
        || is_timestamp(s.as_bytes())
}

/// Count of leading bytes of `b` matching `f`.
fn run(b: &[u8], f: impl Fn(u8) -> bool) -> usize {
    b.iter().take_while(|c| f(**c)).count()
}

/// Strips an optional leading sign.
fn unsigned(b: &[u8]) -> &[u8] {
    match b.first() {
        Some(b'-' | b'+') => &b[1..],
        _ => b,
    }
}

/// `[0-9][0-9_]*` at the start of `b`: its length, 0 if absent.
fn digits_(b: &[u8]) -> usize {
    if b.first().is_some_and(u8::is_ascii_digit) {
        1 + run(&b[1..], |c| c.is_ascii_digit() || c == b'_')
    } else {
        0
    }
}

/// `(:[0-5]?[0-9])+` covering all of `b`.
fn sexagesimal_tail(b: &[u8]) -> bool {
    if b.first() != Some(&b':') {
        return false;
    }
    b[1..].split(|c| *c == b':').all(|seg| match seg {
        [d] => d.is_ascii_digit(),
        [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
        _ => false,
    })
}

/// PyYAML's int regex (binary, octal, decimal, hex, sexagesimal).
fn is_int(b: &[u8]) -> bool {
    let u = unsigned(b);
    let all = |r: &[u8], f: fn(u8) -> bool| !r.is_empty() && r.iter().all(|c| f(*c));
    if let Some(r) = u.strip_prefix(b"0b") {
        return all(r, |c| matches!(c, b'0' | b'1' | b'_'));
    }
    if let Some(r) = u.strip_prefix(b"0x") {
        return all(r, |c| c.is_ascii_hexdigit() || c == b'_');
    }
    if u == b"0" || (u.first() == Some(&b'0') && all(&u[1..], |c| matches!(c, b'0'..=b'7' | b'_')))
    {
        return true;
    }
    if !u.first().is_some_and(|c| (b'1'..=b'9').contains(c)) {
        return false;
    }
    let n = digits_(u);
    n == u.len() || sexagesimal_tail(&u[n..])
}

/// `[eE][-+][0-9]+` covering all of `b`, or `b` empty.
fn exponent(b: &[u8]) -> bool {
    match b {
        [] => true,
        [b'e' | b'E', b'-' | b'+', rest @ ..] => {
            !rest.is_empty() && rest.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// PyYAML's float regex (including `.inf`, `.nan` and sexagesimal floats).
fn is_float(b: &[u8]) -> bool {
    let specials: [&[u8]; 6] = [b".inf", b".Inf", b".INF", b".nan", b".NaN", b".NAN"];
    if specials.contains(&b) || [&b".inf"[..], b".Inf", b".INF"].contains(&unsigned(b)) {
        return true;
    }
    if let Some(r) = b.strip_prefix(b".") {
        let n = run(r, |c| c.is_ascii_digit() || c == b'_');
        return n > 0 && exponent(&r[n..]);
    }
    let u = unsigned(b);
    let n = digits_(u);
    if n == 0 {
        return false;
    }
    let rest = &u[n..];
    if let Some(r) = rest.strip_prefix(b".") {
        let m = run(r, |c| c.is_ascii_digit() || c == b'_');
        return exponent(&r[m..]);
    }
    // Sexagesimal: `(:[0-5]?[0-9])+\.[0-9_]*`.
    match rest.iter().position(|c| *c == b'.') {
        Some(dot) => {
            sexagesimal_tail(&rest[..dot])
                && rest[dot + 1..]
                    .iter()
                    .all(|c| c.is_ascii_digit() || *c == b'_')
        }
        None => false,
    }
}

/// PyYAML's timestamp regex: `YYYY-MM-DD`, or a date with one-or-two-digit
/// month/day followed by `T`/blanks, a time, optional fraction and zone.
fn is_timestamp(b: &[u8]) -> bool {
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    if b.len() == 10
        && (0..4).all(d)
        && b[4] == b'-'
        && d(5)
        && d(6)
        && b[7] == b'-'
        && d(8)
        && d(9)
    {
        return true;
    }
    if !((0..4).all(d) && b.get(4) == Some(&b'-')) {
        return false;
    }
    let mut i = 5;
    for sep in [b'-', b'T'] {
        let n = run(&b[i..], |c| c.is_ascii_digit());
        if !(1..=2).contains(&n) {
            return false;
        }
        i += n;
        if sep == b'-' {
            if b.get(i) != Some(&b'-') {
                return false;
            }
            i += 1;
        }
    }
    match b.get(i) {
        Some(b'T' | b't') => i += 1,
        Some(b' ' | b'\t') => i += run(&b[i..], |c| c == b' ' || c == b'\t'),
        _ => return false,
    }
    let n = run(&b[i..], |c| c.is_ascii_digit());
    if !(1..=2).contains(&n) {
        return false;
    }
    i += n;
    for _ in 0..2 {
        if !(b.get(i) == Some(&b':') && d(i + 1) && d(i + 2)) {
            return false;
        }
        i += 3;
    }
    if b.get(i) == Some(&b'.') {
        i += 1 + run(&b[i + 1..], |c| c.is_ascii_digit());
    }
    let rest = &b[i..];
    let zone = &rest[run(rest, |c| c == b' ' || c == b'\t')..];
    if zone.is_empty() {
        return rest.is_empty();
    }
    match zone {
        [b'Z'] => true,
        [b'-' | b'+', r @ ..] => {
            let h = run(r, |c| c.is_ascii_digit());
            (1..=2).contains(&h)
                && match &r[h..] {
                    [] => true,
                    [b':', m1, m2] => m1.is_ascii_digit() && m2.is_ascii_digit(),
                    _ => false,
                }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers() {
        for yes in [
            "0",
            "-12",
            "+3",
            "1_000",
            "017",
            "0b101",
            "0x1f",
            "190:20:30",
            "1.5",
            "-1.",
            "1.0e+3",
            ".5",
            ".inf",
            "-.Inf",
            ".NaN",
            "1:20.5",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 -5",
            "2001-1-4 1:59:43Z",
            "ON",
            "~",
            "<<",
        ] {
            assert!(resolves_to_non_string(yes), "{yes:?}");
        }
        for no in [
            "0/504E298",
            "127.0.0.1",
            "1.2.3",
            "1e3",
            "1:60",
            "08",
            "0x",
            "abc",
            "2001-12-14x",
            "-",
            "+",
            ".",
            "2001-12-1421:59:43",
            "1.0e3",
            "onn",
            "1e+3",
            "0o",
        ] {
            assert!(!resolves_to_non_string(no), "{no:?}");
        }
    }
}
