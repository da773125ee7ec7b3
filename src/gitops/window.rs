//! Maintenance windows: `Sat 02:00-04:00 UTC`, `Daily 01:00-02:00 UTC`, `Mon,Wed 22:00-23:30 UTC`.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};

/// A weekly time window in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    days: Vec<Weekday>,
    start_min: u32,
    end_min: u32,
}

fn day(s: &str) -> Option<Vec<Weekday>> {
    Some(match s {
        "Mon" => vec![Weekday::Mon],
        "Tue" => vec![Weekday::Tue],
        "Wed" => vec![Weekday::Wed],
        "Thu" => vec![Weekday::Thu],
        "Fri" => vec![Weekday::Fri],
        "Sat" => vec![Weekday::Sat],
        "Sun" => vec![Weekday::Sun],
        "Daily" => vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ],
        _ => return None,
    })
}

fn hm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

impl Window {
    /// Parses `DAYS HH:MM-HH:MM UTC` (only UTC is accepted, to be unambiguous).
    pub fn parse(s: &str) -> Result<Window, String> {
        let bad = || {
            format!("invalid maintenance window '{s}': expected e.g. 'Sat 02:00-04:00 UTC' or 'Daily 01:00-02:00 UTC'")
        };
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [days, range, tz] = parts.as_slice() else {
            return Err(bad());
        };
        if *tz != "UTC" {
            return Err(format!(
                "invalid maintenance window '{s}': the time zone must be UTC"
            ));
        }
        let mut ds = Vec::new();
        for d in days.split(',') {
            ds.extend(day(d).ok_or_else(bad)?);
        }
        let (a, b) = range.split_once('-').ok_or_else(bad)?;
        let (start_min, end_min) = (hm(a).ok_or_else(bad)?, hm(b).ok_or_else(bad)?);
        if start_min >= end_min {
            return Err(format!("invalid maintenance window '{s}': the end must be after the start (no overnight windows)"));
        }
        Ok(Window {
            days: ds,
            start_min,
            end_min,
        })
    }

    /// True when `t` falls inside the window.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let m = t.hour() * 60 + t.minute();
        self.days.contains(&t.weekday()) && m >= self.start_min && m < self.end_min
    }
}

/// True when there are no windows, or `t` is inside one of them.
pub fn open_at(windows: &[String], t: DateTime<Utc>) -> bool {
    windows.is_empty()
        || windows
            .iter()
            .filter_map(|w| Window::parse(w).ok())
            .any(|w| w.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_contain() {
        let w = Window::parse("Sat 02:00-04:00 UTC").unwrap();
        let sat_3 = DateTime::parse_from_rfc3339("2026-11-21T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let sat_5 = DateTime::parse_from_rfc3339("2026-11-21T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(w.contains(sat_3));
        assert!(!w.contains(sat_5));
        assert!(Window::parse("Daily 00:00-24:00 UTC")
            .unwrap()
            .contains(sat_5));
        assert!(Window::parse("Mon,Wed 22:00-23:30 UTC").is_ok());
        assert!(Window::parse("Sat 04:00-02:00 UTC").is_err());
        assert!(Window::parse("Sat 02:00-04:00 CET").is_err());
        assert!(Window::parse("Someday").is_err());
        assert!(open_at(&[], sat_5));
    }
}
