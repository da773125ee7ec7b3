//! The watchdog logic against a fake device.

use super::*;
use std::sync::{Arc, Mutex};

/// What the fake device saw.
#[derive(Debug, Default)]
struct Log {
    events: Vec<String>,
}

struct FakeDevice {
    log: Arc<Mutex<Log>>,
    round_to: Option<u32>,
}

impl WatchdogDevice for FakeDevice {
    fn set_timeout(&mut self, secs: u32) -> std::io::Result<u32> {
        self.log
            .lock()
            .unwrap()
            .events
            .push(format!("timeout {secs}"));
        Ok(self.round_to.unwrap_or(secs))
    }
    fn keepalive(&mut self) -> std::io::Result<()> {
        self.log.lock().unwrap().events.push("keepalive".into());
        Ok(())
    }
    fn disable(self: Box<Self>) -> std::io::Result<()> {
        self.log.lock().unwrap().events.push("magic close".into());
        Ok(())
    }
}

struct FakeOpener {
    log: Arc<Mutex<Log>>,
    present: bool,
    round_to: Option<u32>,
}

impl DeviceOpener for FakeOpener {
    fn open(&self, _: &Path) -> std::io::Result<Box<dyn WatchdogDevice>> {
        if !self.present {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        self.log.lock().unwrap().events.push("open".into());
        Ok(Box::new(FakeDevice {
            log: self.log.clone(),
            round_to: self.round_to,
        }))
    }
}

fn watchdog(mode: &str, present: bool, round_to: Option<u32>) -> (Watchdog, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    let config = WatchdogConfig {
        mode: mode.into(),
        ..WatchdogConfig::default()
    };
    let opener = FakeOpener {
        log: log.clone(),
        present,
        round_to,
    };
    (Watchdog::new(&config, Box::new(opener)), log)
}

fn events(log: &Arc<Mutex<Log>>) -> Vec<String> {
    log.lock().unwrap().events.clone()
}

#[test]
fn armed_at_ttl_minus_margin_then_kept_alive_then_disabled() {
    let (mut w, log) = watchdog("required", true, None);
    assert_eq!(w.feed(30), Ok(()));
    assert!(w.is_active());
    assert_eq!(w.feed(30), Ok(()));
    w.disable();
    assert!(!w.is_active());
    w.disable();
    assert_eq!(
        events(&log),
        ["open", "timeout 25", "keepalive", "magic close"]
    );
}

#[test]
fn a_ttl_change_sets_a_new_timeout() {
    let (mut w, log) = watchdog("automatic", true, None);
    w.feed(30).unwrap();
    w.feed(20).unwrap();
    assert_eq!(events(&log), ["open", "timeout 25", "timeout 15"]);
}

#[test]
fn required_without_a_device_refuses_automatic_goes_on() {
    let (mut w, _) = watchdog("required", false, None);
    let e = w.feed(30).unwrap_err();
    assert!(
        e.contains("watchdog required") && e.contains("/dev/watchdog"),
        "{e}"
    );
    let (mut w, _) = watchdog("automatic", false, None);
    assert_eq!(w.feed(30), Ok(()));
    assert!(!w.is_active());
    let (mut w, log) = watchdog("off", true, None);
    assert_eq!(w.feed(30), Ok(()));
    assert!(events(&log).is_empty());
}

#[test]
fn a_driver_that_rounds_past_ttl_is_refused() {
    let (mut w, log) = watchdog("required", true, Some(60));
    assert!(w.feed(30).unwrap_err().contains("not shorter than ttl"));
    assert_eq!(events(&log), ["open", "timeout 25", "magic close"]);
    let (mut w, _) = watchdog("required", true, Some(24));
    assert_eq!(w.feed(30), Ok(()), "rounding down is fine (a warning)");
}

#[test]
fn timeout_rules() {
    let (w, _) = watchdog("required", true, None);
    assert_eq!(w.timeout_for(30), 25);
    assert_eq!(w.timeout_for(3), 1);
    let config = WatchdogConfig {
        mode: "required".into(),
        safety_margin: -1,
        ..WatchdogConfig::default()
    };
    let half = Watchdog::new(&config, Box::new(LinuxOpener));
    assert_eq!(half.timeout_for(30), 15);
}
