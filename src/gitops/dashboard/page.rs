//! The page shell shared by every dashboard page: head, theme stylesheet, the bundled
//! script, navigation, and the `<main>` the script refreshes in place.

use super::escape::html;

/// Path of the bundled stylesheet.
pub const CSS_PATH: &str = "/ui/dashboard.css";
/// Path of the bundled script.
pub const JS_PATH: &str = "/ui/dashboard.js";
/// The stylesheet (light and dark themes through `prefers-color-scheme`).
pub const CSS: &str = include_str!("assets/dashboard.css");
/// The script: refreshes `<main>` every half second, sorts and filters tables.
pub const JS: &str = include_str!("assets/dashboard.js");

/// A whole page around `body` (already escaped HTML). `fragment_url` is what the script
/// polls for a fresh `<main>` content; `controls` (e.g. the filter box) stay above `<main>`
/// so that a refresh never takes the focus away from them.
pub fn page(title: &str, fragment_url: &str, controls: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"color-scheme\" content=\"light dark\">\n\
<title>{t} · patronus</title>\n<link rel=\"icon\" href=\"data:,\">\n\
<link rel=\"stylesheet\" href=\"{CSS_PATH}\">\n<script src=\"{JS_PATH}\" defer></script>\n\
</head>\n<body>\n<header class=\"top\"><nav aria-label=\"Main\"><a href=\"/\">patronus fleet</a></nav>\
<p class=\"live\"><span id=\"live-state\" role=\"status\">live</span> \
<span id=\"live-time\" aria-hidden=\"true\"></span></p></header>\n\
<div class=\"controls\">{controls}</div>\n<main id=\"main\" data-refresh=\"{u}\">\n{body}</main>\n</body>\n</html>\n",
        t = html(title),
        u = html(fragment_url),
    )
}

/// A table header cell that the script can sort by (`data-sort` = numeric or text).
pub fn th_sort(label: &str, kind: &str) -> String {
    format!(
        "<th scope=\"col\" aria-sort=\"none\" data-sort=\"{k}\"><button type=\"button\">{l}</button></th>",
        k = html(kind),
        l = html(label)
    )
}

/// A plain table header cell.
pub fn th(label: &str) -> String {
    format!("<th scope=\"col\">{}</th>", html(label))
}

/// A table cell with escaped text.
pub fn td(text: &str) -> String {
    format!("<td>{}</td>", html(text))
}

/// A table cell with escaped text and a sort key.
pub fn td_key(text: &str, key: &str) -> String {
    format!("<td data-key=\"{}\">{}</td>", html(key), html(text))
}
