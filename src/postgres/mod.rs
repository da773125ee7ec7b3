//! Local PostgreSQL control: rendering (pure), process control, SQL.

pub mod auto_conf;
pub mod by_major;
pub mod conf_files;
pub mod controldata;
pub mod error;
pub mod identify;
pub mod instance;
pub mod lsn;
pub mod names;
pub mod params;
pub mod pending;
pub mod process;
pub mod recovery_conf;
pub mod render;
pub mod rewind;
pub mod slots;
pub mod sql;
pub mod ssl;
pub mod version;

pub use error::{PgError, PgResult};
pub use instance::{Creds, Following, LocalFiles, PgSettings, Postgres, RecoveryTarget};
pub use sql::{LocalSql, PgRuntime, ReplicationRow};
