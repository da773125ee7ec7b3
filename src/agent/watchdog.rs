//! The Linux watchdog, as Patroni drives it: the device is opened and its timeout set to
//! `ttl - safety_margin` before this member promotes, kept alive after every successful
//! leader-lock update, and closed with the magic character (which disables it) when no
//! primary runs here, in pause and at shutdown. If the agent stops keeping it alive, the
//! kernel resets the machine before the lease can expire.
//!
//! The device sits behind [`WatchdogDevice`] so that the logic is tested without a kernel
//! module; [`LinuxWatchdog`] is the real one (`/dev/watchdog`, `softdog` on machines
//! without hardware).

use crate::config::node::WatchdogConfig;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// An opened watchdog device.
pub trait WatchdogDevice: Send {
    /// Sets the timeout in seconds; returns the timeout the driver applied (read back).
    fn set_timeout(&mut self, secs: u32) -> std::io::Result<u32>;
    /// Restarts the countdown.
    fn keepalive(&mut self) -> std::io::Result<()>;
    /// Writes the magic character and closes: the driver stops counting.
    fn disable(self: Box<Self>) -> std::io::Result<()>;
}

/// Opens watchdog devices (a trait so tests can hand out fakes).
pub trait DeviceOpener: Send {
    /// Opens the device at `path` (this starts its countdown).
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn WatchdogDevice>>;
}

nix::ioctl_read!(wdioc_keepalive, b'W', 5, nix::libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, nix::libc::c_int);
nix::ioctl_read!(wdioc_gettimeout, b'W', 7, nix::libc::c_int);

/// `/dev/watchdog` through the kernel's watchdog ioctls.
pub struct LinuxWatchdog {
    file: std::fs::File,
}

impl WatchdogDevice for LinuxWatchdog {
    fn set_timeout(&mut self, secs: u32) -> std::io::Result<u32> {
        let fd = self.file.as_raw_fd();
        let mut v = nix::libc::c_int::try_from(secs).unwrap_or(nix::libc::c_int::MAX);
        // SAFETY: fd is an open watchdog device; the ioctls read/write one c_int.
        unsafe { wdioc_settimeout(fd, &mut v) }.map_err(std::io::Error::from)?;
        let mut got: nix::libc::c_int = 0;
        // SAFETY: as above.
        unsafe { wdioc_gettimeout(fd, &mut got) }.map_err(std::io::Error::from)?;
        Ok(u32::try_from(got).unwrap_or(0))
    }

    fn keepalive(&mut self) -> std::io::Result<()> {
        let mut dummy: nix::libc::c_int = 0;
        // SAFETY: fd is an open watchdog device; the ioctl ignores its argument.
        unsafe { wdioc_keepalive(self.file.as_raw_fd(), &mut dummy) }
            .map(|_| ())
            .map_err(std::io::Error::from)
    }

    fn disable(mut self: Box<Self>) -> std::io::Result<()> {
        self.file.write_all(b"V")?;
        self.file.flush()
    }
}

/// Opens real devices.
pub struct LinuxOpener;

impl DeviceOpener for LinuxOpener {
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn WatchdogDevice>> {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        Ok(Box::new(LinuxWatchdog { file }))
    }
}

/// `watchdog.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogMode {
    /// Not used.
    Off,
    /// Used when the device works; without one the member goes on (with a warning).
    Automatic,
    /// A member that cannot use the device never leads.
    Required,
}

impl WatchdogMode {
    /// From the normalised `watchdog.mode` text.
    pub fn parse(s: &str) -> WatchdogMode {
        match s {
            "required" => WatchdogMode::Required,
            "automatic" => WatchdogMode::Automatic,
            _ => WatchdogMode::Off,
        }
    }
}

/// The watchdog of this member.
pub struct Watchdog {
    mode: WatchdogMode,
    path: PathBuf,
    safety_margin: i64,
    opener: Box<dyn DeviceOpener>,
    active: Option<(Box<dyn WatchdogDevice>, u64)>,
    warned: bool,
}

impl Watchdog {
    /// The watchdog described by the node's `watchdog` section.
    pub fn new(config: &WatchdogConfig, opener: Box<dyn DeviceOpener>) -> Watchdog {
        Watchdog {
            mode: WatchdogMode::parse(&config.mode),
            path: PathBuf::from(&config.device),
            safety_margin: config.safety_margin,
            opener,
            active: None,
            warned: false,
        }
    }

    /// The timeout for `ttl`: `ttl - safety_margin` (`safety_margin: -1` → `ttl / 2`), at
    /// least 1 s.
    pub fn timeout_for(&self, ttl: u64) -> u32 {
        let t = if self.safety_margin < 0 {
            ttl / 2
        } else {
            ttl.saturating_sub(self.safety_margin.unsigned_abs())
        };
        u32::try_from(t.max(1)).unwrap_or(u32::MAX)
    }

    /// Arms (first call, or after a `ttl` change) or keeps alive the device. An error means
    /// this member must not run a primary (`required` mode only; `automatic` warns once).
    pub fn feed(&mut self, ttl: u64) -> Result<(), String> {
        if self.mode == WatchdogMode::Off {
            return Ok(());
        }
        let result = match &mut self.active {
            Some((dev, armed_ttl)) if *armed_ttl == ttl => {
                dev.keepalive().map_err(|e| e.to_string())
            }
            _ => self.activate(ttl),
        };
        match (result, self.mode) {
            (Ok(()), _) => Ok(()),
            (Err(e), WatchdogMode::Required) => Err(format!("watchdog required but {e}")),
            (Err(e), _) => {
                if !self.warned {
                    tracing::warn!("watchdog not used ({e}); running without it");
                    self.warned = true;
                }
                Ok(())
            }
        }
    }

    fn activate(&mut self, ttl: u64) -> Result<(), String> {
        let want = self.timeout_for(ttl);
        let mut dev = match self.active.take() {
            Some((dev, _)) => dev,
            None => self
                .opener
                .open(&self.path)
                .map_err(|e| format!("{} cannot be opened: {e}", self.path.display()))?,
        };
        let got = dev
            .set_timeout(want)
            .map_err(|e| format!("{} refused timeout {want} s: {e}", self.path.display()))?;
        if got != want {
            tracing::warn!(
                "watchdog {} rounded the timeout {want} s to {got} s",
                self.path.display()
            );
        }
        if u64::from(got) >= ttl {
            let _ = dev.disable();
            return Err(format!(
                "{} timeout {got} s is not shorter than ttl {ttl} s",
                self.path.display()
            ));
        }
        tracing::info!(
            "watchdog {} activated with a {got} s timeout",
            self.path.display()
        );
        self.active = Some((dev, ttl));
        Ok(())
    }

    /// Disables the device (magic close) if it is active.
    pub fn disable(&mut self) {
        if let Some((dev, _)) = self.active.take() {
            match dev.disable() {
                Ok(()) => tracing::info!("watchdog {} disabled", self.path.display()),
                Err(e) => {
                    tracing::error!("failed to disable watchdog {}: {e}", self.path.display())
                }
            }
        }
    }

    /// True while the device counts down.
    #[cfg(test)]
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }
}

impl Drop for Watchdog {
    /// An agent that exits normally disables the device (one killed -9 does not: the
    /// countdown then resets the machine, which is the point).
    fn drop(&mut self) {
        self.disable();
    }
}

#[cfg(test)]
#[path = "watchdog_tests.rs"]
mod tests;
