//! Replication slot SQL and files: list, create, drop, advance, and the logical slot copy
//! from the leader (its `pg_replslot/<name>/state` file, read with `pg_read_binary_file`).

use super::error::{PgError, PgResult};
use super::lsn::{format_lsn, parse_lsn};
use super::names::quote_literal;
use super::{LocalSql, Postgres};
use crate::ha::slots::{LocalSlot, Lsn, SlotKind};
use std::io::Write;

const LIST_SQL: &str = "SELECT slot_name::text, slot_type, database::text, plugin::text, \
 (CASE WHEN slot_type = 'physical' THEN restart_lsn ELSE confirmed_flush_lsn END)::text, active \
 FROM pg_replication_slots WHERE NOT temporary ORDER BY slot_name";

impl LocalSql {
    /// The non-temporary slots of the local instance.
    pub async fn slots(&self) -> PgResult<Vec<LocalSlot>> {
        let rows = self
            .with_client(async |c| c.query(LIST_SQL, &[]).await)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let logical = r.get::<_, String>(1) == "logical";
                let kind = if logical {
                    SlotKind::Logical {
                        database: r.get::<_, Option<String>>(2).unwrap_or_default(),
                        plugin: r.get::<_, Option<String>>(3).unwrap_or_default(),
                    }
                } else {
                    SlotKind::Physical
                };
                LocalSlot {
                    name: r.get(0),
                    kind,
                    position: r.get::<_, Option<String>>(4).as_deref().and_then(parse_lsn),
                    active: r.get(5),
                }
            })
            .collect())
    }

    /// Drops a slot.
    pub async fn drop_slot(&self, name: &str) -> PgResult<()> {
        self.execute(&format!(
            "SELECT pg_drop_replication_slot({})",
            quote_literal(name)
        ))
        .await
    }

    /// Creates a logical slot (in its database).
    pub async fn create_logical_slot(&self, name: &str, db: &str, plugin: &str) -> PgResult<()> {
        let c = self.connect_db(None, db).await?;
        c.batch_execute(&format!(
            "SELECT pg_create_logical_replication_slot({}, {})",
            quote_literal(name),
            quote_literal(plugin)
        ))
        .await?;
        Ok(())
    }

    /// Moves a slot forward (`pg_replication_slot_advance`, in the slot's database when
    /// logical).
    pub async fn advance_slot(&self, name: &str, kind: &SlotKind, to: Lsn) -> PgResult<()> {
        let db = match kind {
            SlotKind::Physical => "postgres",
            SlotKind::Logical { database, .. } => database,
        };
        let c = self.connect_db(None, db).await?;
        c.batch_execute(&format!(
            "SELECT pg_replication_slot_advance({}, {}::pg_lsn)",
            quote_literal(name),
            quote_literal(&format_lsn(to))
        ))
        .await?;
        Ok(())
    }

    /// Reads the state files of the named logical slots on the leader at `host:port`.
    pub async fn read_remote_slot_states(
        &self,
        host: &str,
        port: u16,
        names: &[String],
    ) -> PgResult<Vec<(String, Vec<u8>)>> {
        let c = self.connect_db(Some((host, port)), "postgres").await?;
        let rows = c
            .query(
                "SELECT slot_name::text, pg_read_binary_file('pg_replslot/' || slot_name || '/state') \
                 FROM pg_replication_slots WHERE slot_type = 'logical' AND NOT temporary \
                 AND slot_name = ANY($1)",
                &[&names],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

impl Postgres {
    /// Writes a slot's state file into `pg_replslot/<name>/state` (PostgreSQL loads it at
    /// the next start), owned by the PostgreSQL user and synced to disk.
    pub fn write_slot_state(&self, name: &str, state: &[u8]) -> PgResult<()> {
        let dir = self.settings.data_dir.join("pg_replslot").join(name);
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| PgError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        self.user.chown(&dir)?;
        let tmp = dir.join("state.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(state).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        self.user.chown(&tmp)?;
        let path = dir.join("state");
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))
    }
}
