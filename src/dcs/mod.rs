//! Distributed configuration store: Patroni's key layout and JSON on etcd v3.
//!
//! The data model (`cluster`, `keys`, `member_state`, `model`) lives in the pure
//! `patronus-core` crate and is re-exported here; the clients and retries live in this crate.

pub(crate) mod error;
pub mod etcd;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod memory;
mod retry;
pub(crate) mod traits;

pub use patronus_core::dcs::{cluster, keys, member_state, model};

pub use cluster::{Cluster, Leader, MemberEntry, RawKv, Versioned};
pub use error::DcsError;
pub use keys::Keys;
pub use member_state::MemberState;
pub use model::{Failover, HistoryLine, Member, Status, SyncState};
pub use traits::{Dcs, DcsResult};
