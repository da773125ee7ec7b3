//! Restart filters (pure): Patroni's `POST /restart` conditions (`role`, `postgres_version`,
//! `restart_pending`) and the fate of a scheduled restart when the HA loop looks at it.

/// A restart scheduled through `POST /restart` with Patroni's filters (published in the
/// member key as `scheduled_restart`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledRestart {
    /// ISO time as given.
    pub schedule: String,
    /// The same in ms since the epoch.
    pub at_ms: u64,
    /// Postmaster start time when scheduled (a restart meanwhile cancels it).
    pub postmaster_start_time: Option<String>,
    /// Only if our role is this.
    pub role: Option<String>,
    /// Only if the running server version is lower than this.
    pub postgres_version: Option<String>,
    /// Only if a restart is pending.
    pub restart_pending: bool,
    /// Primary start timeout override (seconds).
    pub timeout: Option<u64>,
}

impl ScheduledRestart {
    /// The member-key JSON (`scheduled_restart`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("schedule".into(), self.schedule.clone().into());
        if let Some(p) = &self.postmaster_start_time {
            m.insert("postmaster_start_time".into(), p.clone().into());
        }
        if let Some(r) = &self.role {
            m.insert("role".into(), r.clone().into());
        }
        if let Some(v) = &self.postgres_version {
            m.insert("postgres_version".into(), v.clone().into());
        }
        if self.restart_pending {
            m.insert("restart_pending".into(), true.into());
        }
        if let Some(t) = self.timeout {
            m.insert("timeout".into(), t.into());
        }
        serde_json::Value::Object(m)
    }
}

/// The conditions of a restart request, checked against the member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestartFilter<'a> {
    /// Restart only a member of this role (`master` is an alias of `primary`).
    pub role: Option<&'a str>,
    /// Restart only when the running server version number is below this one.
    pub below_version: Option<i64>,
    /// Restart only when a restart is pending.
    pub restart_pending: bool,
}

/// What the member is, for [`RestartFilter::holds`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestartFacts<'a> {
    /// Our role as published (`primary`, `replica`, `standby_leader`, …).
    pub role: &'a str,
    /// The running server's version number (None when PostgreSQL does not run).
    pub server_version: Option<i32>,
    /// A restart is pending (a parameter changed that needs one).
    pub pending_restart: bool,
}

impl RestartFilter<'_> {
    /// True when every condition holds for this member (Patroni's `restart_matches`).
    pub fn holds(&self, f: &RestartFacts) -> bool {
        let role_ok = self.role.is_none_or(|r| match r {
            "primary" | "master" => f.role == "primary",
            other => f.role == other,
        });
        let version_ok = self
            .below_version
            .is_none_or(|want| f.server_version.is_some_and(|v| i64::from(v) < want));
        role_ok && version_ok && (!self.restart_pending || f.pending_restart)
    }
}

/// What the HA loop does with a scheduled restart this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledStep {
    /// Not due yet: keep it, the observation carries its time.
    Wait(u64),
    /// Due and its filters hold: the core restarts at this time.
    Due(u64),
    /// PostgreSQL restarted since it was scheduled: drop it.
    Cancelled,
    /// Due but its filters fail: drop it.
    Skipped,
}

impl ScheduledStep {
    /// The time the observation carries (`Observation::scheduled_restart_ms`).
    pub fn at_ms(self) -> Option<u64> {
        match self {
            ScheduledStep::Wait(t) | ScheduledStep::Due(t) => Some(t),
            ScheduledStep::Cancelled | ScheduledStep::Skipped => None,
        }
    }

    /// True when the scheduled restart must be forgotten.
    pub fn drops(self) -> bool {
        self.at_ms().is_none()
    }
}

/// The fate of `s` at `now_ms`. `postmaster_start_time` is that of the running PostgreSQL
/// (outer None when it does not run); `below_version` is `s.postgres_version` parsed (an
/// unreadable version must be given as `Some(0)`, a filter nothing passes).
pub fn scheduled_step(
    s: &ScheduledRestart,
    now_ms: u64,
    postmaster_start_time: Option<Option<&str>>,
    below_version: Option<i64>,
    facts: &RestartFacts,
) -> ScheduledStep {
    if let (Some(running), Some(scheduled)) = (postmaster_start_time, &s.postmaster_start_time) {
        if running != Some(scheduled.as_str()) {
            return ScheduledStep::Cancelled;
        }
    }
    if s.at_ms > now_ms {
        return ScheduledStep::Wait(s.at_ms);
    }
    let filter = RestartFilter {
        role: s.role.as_deref(),
        below_version,
        restart_pending: s.restart_pending,
    };
    if filter.holds(facts) {
        ScheduledStep::Due(s.at_ms)
    } else {
        ScheduledStep::Skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(at_ms: u64) -> ScheduledRestart {
        ScheduledRestart {
            schedule: "2030-01-01T00:00:00+00:00".into(),
            at_ms,
            postmaster_start_time: Some("t0".into()),
            role: None,
            postgres_version: None,
            restart_pending: false,
            timeout: None,
        }
    }

    const PRIMARY: RestartFacts = RestartFacts {
        role: "primary",
        server_version: Some(150004),
        pending_restart: false,
    };

    #[test]
    fn role_filter_accepts_master_for_primary() {
        let f = |role| RestartFilter {
            role: Some(role),
            ..Default::default()
        };
        assert!(f("master").holds(&PRIMARY));
        assert!(f("primary").holds(&PRIMARY));
        assert!(!f("replica").holds(&PRIMARY));
        let replica = RestartFacts {
            role: "replica",
            ..PRIMARY
        };
        assert!(f("replica").holds(&replica));
        assert!(!f("master").holds(&replica));
    }

    #[test]
    fn version_filter_needs_an_older_running_server() {
        let f = |v| RestartFilter {
            below_version: Some(v),
            ..Default::default()
        };
        assert!(f(150005).holds(&PRIMARY));
        assert!(!f(150004).holds(&PRIMARY));
        let stopped = RestartFacts {
            server_version: None,
            ..PRIMARY
        };
        assert!(!f(160000).holds(&stopped));
    }

    #[test]
    fn pending_filter_needs_a_pending_restart() {
        let f = RestartFilter {
            restart_pending: true,
            ..Default::default()
        };
        assert!(!f.holds(&PRIMARY));
        let pending = RestartFacts {
            pending_restart: true,
            ..PRIMARY
        };
        assert!(f.holds(&pending));
    }

    #[test]
    fn a_scheduled_restart_waits_then_falls_due() {
        let s = sched(1000);
        let step = |now| scheduled_step(&s, now, Some(Some("t0")), None, &PRIMARY);
        assert_eq!(step(999), ScheduledStep::Wait(1000));
        assert_eq!(step(1000), ScheduledStep::Due(1000));
        assert!(!step(1000).drops());
    }

    #[test]
    fn a_postmaster_restart_cancels_it_even_before_it_is_due() {
        let s = sched(1000);
        let step = scheduled_step(&s, 0, Some(Some("t1")), None, &PRIMARY);
        assert_eq!(step, ScheduledStep::Cancelled);
        assert!(step.drops());
        // While PostgreSQL does not run nothing is known: it waits.
        let stopped = scheduled_step(&s, 0, None, None, &PRIMARY);
        assert_eq!(stopped, ScheduledStep::Wait(1000));
    }

    #[test]
    fn failing_filters_skip_it_when_due() {
        let mut s = sched(1000);
        s.role = Some("replica".into());
        let step = scheduled_step(&s, 2000, Some(Some("t0")), None, &PRIMARY);
        assert_eq!(step, ScheduledStep::Skipped);
        assert_eq!(step.at_ms(), None);
        s.role = None;
        let unreadable_version = scheduled_step(&s, 2000, Some(Some("t0")), Some(0), &PRIMARY);
        assert_eq!(unreadable_version, ScheduledStep::Skipped);
    }
}
