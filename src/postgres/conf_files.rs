//! The configuration files of the instance: postgresql.conf (over `postgresql.base.conf`),
//! pg_hba.conf, pg_ident.conf, the standby signal, and the cleaning of
//! `postgresql.auto.conf`. With `postgresql.config_dir` (the Debian layout) they are written
//! there and postgresql.conf names `hba_file` and `ident_file`; PostgreSQL is started with
//! `--config-file`.

use super::error::PgResult;
use super::instance::{io, write_owned, Postgres, RecoveryTarget};
use super::params::conf_parameters;
use super::process::PgUser;
use super::render::{render_hba, render_ident, render_postgresql_conf, ConfInput, RecoveryInput};
use serde_json::{Map, Value};
use std::path::Path;

impl Postgres {
    /// Renders and writes postgresql.conf (+ pg_hba when managed) and the standby signal.
    /// Returns true when a file changed (a reload is needed).
    pub fn write_config(
        &self,
        dynamic_params: &Map<String, Value>,
        dynamic_hba: Option<&[String]>,
        recovery: Option<&RecoveryTarget>,
    ) -> PgResult<bool> {
        let d = self.data();
        let c = self.conf_dir();
        self.prepare_conf_dir()?;
        let conf = c.join("postgresql.conf");
        let local = self.local_files();
        let major = self.major();
        let mut params = conf_parameters(dynamic_params, &local.parameters);
        if let Some(m) = major {
            for w in super::by_major::adapt(&mut params, m) {
                tracing::warn!("{w}");
            }
        }
        if let Some(names) = self.sync_names() {
            // Sync mode owns the setting: the managed value on a primary (or a standby about
            // to promote), none on a replica.
            if (recovery.is_none() || self.sync_names_in_recovery()) && !names.is_empty() {
                params.insert("synchronous_standby_names".into(), names);
            } else {
                params.remove("synchronous_standby_names");
            }
        }
        let separate = self.separate_conf_dir();
        let in_conf = |name: &str| separate.then(|| c.join(name).display().to_string());
        let (hba_path, ident_path) = (in_conf("pg_hba.conf"), in_conf("pg_ident.conf"));
        let rendered = render_postgresql_conf(&ConfInput {
            base_conf: "postgresql.base.conf",
            parameters: &params,
            hba_file: hba_path.as_deref(),
            ident_file: ident_path.as_deref(),
            recovery: recovery.map(|r| RecoveryInput {
                primary_conninfo: r.conninfo.clone(),
                primary_slot_name: r.slot.as_deref(),
                recovery_target_timeline: "latest",
                extra: super::recovery_conf::replica_settings(&r.recovery_conf)
                    .into_iter()
                    .chain(r.overrides.iter().cloned())
                    .collect(),
            }),
        });
        let mut changed = write_if_changed(&conf, &rendered.text, &self.user)?;
        let hba = local.pg_hba.as_deref().or(dynamic_hba);
        if let Some(lines) = hba {
            changed |=
                write_if_changed(&c.join("pg_hba.conf"), &render_hba(lines).text, &self.user)?;
        }
        let dynamic_ident = self.dynamic_ident.read().ok().and_then(|d| d.clone());
        if let Some(lines) = local.pg_ident.as_ref().or(dynamic_ident.as_ref()) {
            let path = c.join("pg_ident.conf");
            changed |= write_if_changed(&path, &render_ident(lines).text, &self.user)?;
        }
        changed |= self.sanitize_auto_conf()?;
        let signal = d.join("standby.signal");
        match (recovery.is_some(), signal.exists()) {
            (true, false) => write_owned(&signal, "", &self.user)?,
            (false, true) => std::fs::remove_file(&signal).map_err(io(&signal))?,
            _ => {}
        }
        Ok(changed)
    }

    /// Makes `config_dir` ready: created when missing; `postgresql.base.conf` there is the
    /// original postgresql.conf (of the config dir, else the one initdb or a base backup left
    /// in the data directory); pg_hba.conf and pg_ident.conf are copied from the data
    /// directory when the config dir has none (they stay in use when not managed).
    fn prepare_conf_dir(&self) -> PgResult<()> {
        let (d, c) = (self.data(), self.conf_dir());
        if self.separate_conf_dir() && !c.exists() {
            std::fs::create_dir_all(c).map_err(io(c))?;
            self.user.chown(c)?;
        }
        let base = c.join("postgresql.base.conf");
        if !base.exists() {
            let original = [c.join("postgresql.conf"), d.join("postgresql.conf")]
                .into_iter()
                .find(|p| p.exists());
            match original {
                Some(p) => {
                    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
                    write_owned(&base, &text, &self.user)?;
                    if (p.starts_with(d) && self.separate_conf_dir())
                        || p == c.join("postgresql.conf")
                    {
                        std::fs::remove_file(&p).map_err(io(&p))?;
                    }
                }
                None => write_owned(&base, "", &self.user)?,
            }
        }
        if self.separate_conf_dir() {
            for name in ["pg_hba.conf", "pg_ident.conf"] {
                let (from, to) = (d.join(name), c.join(name));
                if !to.exists() && from.exists() {
                    let text = std::fs::read_to_string(&from).map_err(io(&from))?;
                    write_owned(&to, &text, &self.user)?;
                }
            }
        }
        Ok(())
    }

    /// Removes foreign recovery settings from `postgresql.auto.conf` (see
    /// [`super::auto_conf`]); true when the file changed.
    fn sanitize_auto_conf(&self) -> PgResult<bool> {
        let path = self.data().join("postgresql.auto.conf");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(false);
        };
        let (kept, removed) = super::auto_conf::strip_recovery(&text);
        if removed.is_empty() {
            return Ok(false);
        }
        tracing::warn!(
            "removed {} from {}: patronus manages the recovery settings",
            removed.join(", "),
            path.display()
        );
        write_owned(&path, &kept, &self.user)?;
        Ok(true)
    }

    /// Creates an empty signal file (`recovery.signal`, `standby.signal`) in the data
    /// directory, owned by the data directory's owner.
    pub fn write_signal(&self, name: &str) -> PgResult<()> {
        write_owned(&self.data().join(name), "", &self.user)
    }

    /// Appends `bootstrap.pg_hba` to initdb's pg_hba.conf (used when pg_hba is not managed).
    pub fn append_bootstrap_hba(&self) -> PgResult<()> {
        if self.settings.bootstrap_pg_hba.is_empty() {
            return Ok(());
        }
        let path = self.data().join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&path).map_err(io(&path))?;
        text.push_str("\n# added by patronus from bootstrap.pg_hba\n");
        for l in &self.settings.bootstrap_pg_hba {
            text.push_str(l);
            text.push('\n');
        }
        write_owned(&path, &text, &self.user)
    }
}

fn write_if_changed(path: &Path, text: &str, user: &PgUser) -> PgResult<bool> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    write_owned(path, text, user)?;
    Ok(true)
}
