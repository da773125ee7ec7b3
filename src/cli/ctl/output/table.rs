//! A box-drawing table in the style of Python's `prettytable` as patronictl
//! configures it: `+`/`-`/`|` borders, one space of padding, a title embedded
//! in the top border, and rules between all rows once any cell is multi-line.

/// Horizontal alignment of a column (applies to its header too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    /// Text flush left, padded on the right.
    Left,
    /// Text flush right, padded on the left.
    Right,
}

/// Number of characters of the widest line of `s`.
fn width(s: &str) -> usize {
    s.split('\n').map(|l| l.chars().count()).max().unwrap_or(0)
}

/// Pads `s` to `w` characters according to `align`.
fn justify(s: &str, w: usize, align: Align) -> String {
    let pad = " ".repeat(w.saturating_sub(s.chars().count()));
    match align {
        Align::Left => format!("{s}{pad}"),
        Align::Right => format!("{pad}{s}"),
    }
}

/// Renders the table; every line ends with `\n`.
///
/// `title` (e.g. ` Cluster: batman (7123) `) replaces the start of the top
/// border after its first `+`; when it does not fit, the last column is
/// widened so that it does. A table without rows prints its header followed by
/// two rules, as prettytable does.
pub(super) fn render(
    title: Option<&str>,
    columns: &[(String, Align)],
    rows: &[Vec<String>],
) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let title_len = title.map_or(0, |t| t.chars().count());
    let line_len = 1 + widths.iter().map(|w| w + 3).sum::<usize>();
    if let Some(last) = widths.last_mut() {
        *last += (title_len + 2).saturating_sub(line_len);
    }
    let rule: String = std::iter::once("+".to_string())
        .chain(widths.iter().map(|w| format!("{}+", "-".repeat(w + 2))))
        .collect();
    let mut out = String::new();
    match title {
        Some(t) => {
            out.push('+');
            out.push_str(t);
            out.extend(rule.chars().skip(1 + title_len));
        }
        None => out.push_str(&rule),
    }
    out.push('\n');
    let header: Vec<String> = columns.iter().map(|(h, _)| h.clone()).collect();
    push_row(&mut out, &header, columns, &widths);
    out.push_str(&rule);
    out.push('\n');
    let all_rules = rows.iter().flatten().any(|c| c.contains('\n'));
    for (i, row) in rows.iter().enumerate() {
        push_row(&mut out, row, columns, &widths);
        if all_rules || i + 1 == rows.len() {
            out.push_str(&rule);
            out.push('\n');
        }
    }
    if rows.is_empty() {
        out.push_str(&rule);
        out.push('\n');
    }
    out
}

/// Appends one (possibly multi-line) row, cells aligned to the top.
fn push_row(out: &mut String, row: &[String], columns: &[(String, Align)], widths: &[usize]) {
    let cells: Vec<Vec<&str>> = row.iter().map(|c| c.split('\n').collect()).collect();
    let height = cells.iter().map(Vec::len).max().unwrap_or(1);
    for line in 0..height {
        out.push('|');
        for (i, (_, align)) in columns.iter().enumerate() {
            let text = cells
                .get(i)
                .and_then(|c| c.get(line))
                .copied()
                .unwrap_or("");
            let w = widths.get(i).copied().unwrap_or(0);
            out.push(' ');
            out.push_str(&justify(text, w, *align));
            out.push_str(" |");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[(&str, Align)]) -> Vec<(String, Align)> {
        names.iter().map(|(n, a)| (n.to_string(), *a)).collect()
    }

    #[test]
    fn frame_and_alignment() {
        let c = cols(&[
            ("TL", Align::Right),
            ("LSN", Align::Right),
            ("Reason", Align::Left),
        ]);
        let rows = vec![vec![
            "1".to_string(),
            "24392648".to_string(),
            "x".to_string(),
        ]];
        let want = "\
+----+----------+--------+
| TL |      LSN | Reason |
+----+----------+--------+
|  1 | 24392648 | x      |
+----+----------+--------+
";
        assert_eq!(render(None, &c, &rows), want);
    }

    #[test]
    fn title_widens_last_column_and_empty_table() {
        let c = cols(&[("A", Align::Left)]);
        let want = "\
+ Cluster: x (y) +
| A              |
+----------------+
+----------------+
";
        assert_eq!(render(Some(" Cluster: x (y) "), &c, &[]), want);
    }

    #[test]
    fn multi_line_cells_get_rules_everywhere() {
        let c = cols(&[("A", Align::Left), ("B", Align::Right)]);
        let rows = vec![
            vec!["a\nbb".to_string(), "1".to_string()],
            vec!["c".to_string(), "22".to_string()],
        ];
        let want = "\
+ T -+----+
| A  |  B |
+----+----+
| a  |  1 |
| bb |    |
+----+----+
| c  | 22 |
+----+----+
";
        assert_eq!(render(Some(" T "), &c, &rows), want);
    }
}
