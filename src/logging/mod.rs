//! The tracing subscriber: Patroni-like lines or JSON, to stderr or to a size-rotated file
//! under `log.dir`, with every `log` setting replaceable at runtime ([`apply`], called on
//! SIGHUP / `POST /reload`).

pub(crate) mod file;
pub(crate) mod format;

use crate::config::LogConfig;
use file::RotatingFile;
use format::{Record, DEFAULT_FORMAT};
use std::io::Write;
use std::sync::RwLock;
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The name of the log file in `log.dir` (Patroni's handler names it after its module,
/// `patroni.log`; tools and logrotate rules written for Patroni find it there).
pub const LOG_FILE_NAME: &str = "patroni.log";

/// The settings in force.
struct Settings {
    level: Level,
    json: bool,
    format: String,
    dateformat: Option<String>,
    file: Option<RotatingFile>,
}

static SETTINGS: RwLock<Option<Settings>> = RwLock::new(None);

/// Patroni's level name → tracing's.
fn level_of(name: &str) -> Level {
    match name.to_ascii_uppercase().as_str() {
        "DEBUG" => Level::DEBUG,
        "WARNING" | "WARN" => Level::WARN,
        "ERROR" | "CRITICAL" => Level::ERROR,
        _ => Level::INFO,
    }
}

fn python_level(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// Installs the global subscriber for a command (stderr, default format). `RUST_LOG`, when
/// set, filters before the `log.level`.
pub fn init(level: &str, json: bool) {
    let cfg = LogConfig {
        level: level.to_string(),
        kind: if json { "json" } else { "plain" }.to_string(),
        ..LogConfig::default()
    };
    init_with(&cfg);
}

/// Installs the global subscriber from a node's `log` section. A `log.dir` that cannot be
/// opened is reported on stderr and the log stays there.
pub fn init_with(cfg: &LogConfig) {
    if let Err(e) = apply(cfg) {
        eprintln!("{e}; logging to stderr");
    }
    let env = std::env::var("RUST_LOG")
        .ok()
        .map(tracing_subscriber::EnvFilter::new);
    let _ = tracing_subscriber::registry()
        .with(env)
        .with(PatroniLayer)
        .try_init();
}

/// Replaces the settings in force (level, type, format, dateformat, dir, file_size,
/// file_num). On error (the file cannot be opened) the previous settings stay.
pub fn apply(cfg: &LogConfig) -> Result<(), String> {
    let file = match &cfg.dir {
        Some(dir) => {
            let path = dir.join(LOG_FILE_NAME);
            let f = RotatingFile::open(&path, cfg.file_size, cfg.file_num)
                .map_err(|e| format!("log.dir: cannot open {}: {e}", path.display()))?;
            Some(f)
        }
        None => None,
    };
    let new = Settings {
        level: level_of(&cfg.level),
        json: cfg.kind.eq_ignore_ascii_case("json"),
        format: cfg.format.clone().unwrap_or_else(|| DEFAULT_FORMAT.into()),
        dateformat: cfg.dateformat.clone(),
        file,
    };
    if let Ok(mut s) = SETTINGS.write() {
        *s = Some(new);
    }
    Ok(())
}

/// Noisy libraries are shown from WARNING only (as before: h2, tower, hyper, tonic).
fn quiet_target(target: &str, level: &Level) -> bool {
    let noisy = ["h2", "tower", "hyper", "tonic", "rustls", "reqwest"];
    *level > Level::WARN && noisy.iter().any(|n| target.starts_with(n))
}

/// Collects the message and any other fields of an event (`key=value` after the message).
#[derive(Default)]
struct Fields(String, String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.1.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

struct PatroniLayer;

impl<S: Subscriber> tracing_subscriber::Layer<S> for PatroniLayer {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level can change at runtime: decide per event, never cache "never".
        tracing::subscriber::Interest::sometimes()
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let Ok(guard) = SETTINGS.read() else { return };
        let Some(s) = guard.as_ref() else { return };
        if *meta.level() > s.level || quiet_target(meta.target(), meta.level()) {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let message = f.0 + &f.1;
        let rec = Record {
            time: chrono::Local::now(),
            level: python_level(meta.level()),
            message: &message,
            target: meta.target(),
        };
        let df = s.dateformat.as_deref();
        let mut line = if s.json {
            format::json(&s.format, df, &rec)
        } else {
            format::plain(&s.format, df, &rec)
        };
        line.push('\n');
        if s.file.is_none() {
            let _ = std::io::stderr().write_all(line.as_bytes());
            return;
        }
        drop(guard);
        if let Ok(mut w) = SETTINGS.write() {
            if let Some(file) = w.as_mut().and_then(|s| s.file.as_mut()) {
                if let Err(e) = file.write_record(line.as_bytes()) {
                    eprintln!("cannot write {}: {e}", file.path().display());
                }
            }
        }
    }
}
