//! Local PostgreSQL control: rendering (pure), process control, SQL.

pub(crate) mod auto_conf;
pub(crate) mod by_major;
pub(crate) mod conf_files;
pub(crate) mod controldata;
pub(crate) mod error;
pub(crate) mod identify;
pub(crate) mod instance;
pub(crate) mod lsn;
pub(crate) mod names;
pub(crate) mod params;
pub(crate) mod pending;
pub(crate) mod process;
pub(crate) mod recovery_conf;
pub(crate) mod render;
pub(crate) mod rewind;
pub(crate) mod slots;
pub(crate) mod sql;
pub mod ssl;
pub(crate) mod version;

pub use error::{PgError, PgResult};
pub use instance::{Creds, Following, LocalFiles, PgSettings, Postgres, RecoveryTarget};
pub use sql::{LocalSql, PgRuntime, ReplicationRow};
