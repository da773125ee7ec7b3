//! Timeline history: PostgreSQL's `<TL>.history` file → the DCS `history` value (pure).

use crate::dcs::HistoryLine;
use crate::postgres::lsn::parse_lsn;

/// Parses a timeline history file (`tl<TAB>lsn<TAB>reason` lines).
pub fn parse_history_file(text: &str) -> Vec<HistoryLine> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            let tl = parts.next()?.trim().parse().ok()?;
            let lsn = parse_lsn(parts.next()?.trim())?;
            let reason = parts.next().unwrap_or("").trim().to_string();
            Some(HistoryLine {
                timeline: tl,
                lsn,
                reason,
                timestamp: None,
                new_leader: None,
            })
        })
        .collect()
}

/// Builds the new `history` value: file lines, enriched fields of older lines carried over
/// from the previous value, the newest line stamped with `timestamp` and `me`.
pub fn merge_history(
    file: Vec<HistoryLine>,
    previous: &[HistoryLine],
    timestamp: &str,
    me: &str,
) -> Vec<HistoryLine> {
    let n = file.len();
    file.into_iter()
        .enumerate()
        .map(|(i, mut line)| {
            if i + 1 == n {
                line.timestamp = Some(timestamp.to_string());
                line.new_leader = Some(me.to_string());
            } else if let Some(p) = previous.iter().find(|p| p.timeline == line.timeline) {
                line.timestamp = p.timestamp.clone();
                line.new_leader = p.new_leader.clone();
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_file_and_merge() {
        let file = parse_history_file("1\t0/5000060\tno recovery target specified\n2\t0/6000000\tno recovery target specified\n");
        assert_eq!(file.len(), 2);
        assert_eq!(file[1].lsn, 0x6000000);
        let prev = vec![HistoryLine {
            timeline: 1,
            lsn: 0x5000060,
            reason: "no recovery target specified".into(),
            timestamp: Some("t1".into()),
            new_leader: Some("p2".into()),
        }];
        let merged = merge_history(file, &prev, "t2", "p3");
        assert_eq!(merged[0].new_leader.as_deref(), Some("p2"));
        assert_eq!(merged[1].timestamp.as_deref(), Some("t2"));
        assert_eq!(merged[1].new_leader.as_deref(), Some("p3"));
    }
}
