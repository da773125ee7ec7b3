//! The one HTML escaping function of the dashboard: every text that reaches a page (cluster
//! and member names, authors, commit messages, config values, all written by users) goes
//! through [`html`], in element content and in quoted attribute values alike.

/// Escapes `&`, `<`, `>`, `"` and `'` so that `s` is inert text in element content and in
/// single- or double-quoted attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a path segment for a link (`/cluster/<scope>`): everything but unreserved
/// characters is percent-encoded, so the result is also safe inside an attribute.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reverses [`html`] (the five entities it writes).
    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(path_segment("a b/<c>"), "a%20b%2F%3Cc%3E");
    }

    proptest! {
        #![proptest_config(crate::prop_support::config())]

        #[test]
        fn escaped_text_has_no_markup_and_round_trips(s in any::<String>()) {
            let e = html(&s);
            prop_assert!(!e.contains('<') && !e.contains('>'));
            prop_assert!(!e.contains('"') && !e.contains('\''));
            // Every '&' starts one of the entities written.
            for (i, _) in e.match_indices('&') {
                let rest = &e[i..];
                prop_assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                    .iter()
                    .any(|ent| rest.starts_with(ent)));
            }
            prop_assert_eq!(unescape(&e), s);
        }

        #[test]
        fn path_segments_are_unreserved_ascii(s in any::<String>()) {
            let p = path_segment(&s);
            prop_assert!(p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        }
    }
}
