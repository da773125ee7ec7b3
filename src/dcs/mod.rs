//! Distributed configuration store: Patroni's key layout and JSON on etcd v3.

pub mod cluster;
pub mod error;
pub mod etcd;
pub mod keys;
pub mod member_state;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod model;
#[cfg(test)]
mod prop_tests;
mod retry;
pub mod traits;

pub use cluster::{Cluster, Leader, MemberEntry, RawKv, Versioned};
pub use error::DcsError;
pub use keys::Keys;
pub use member_state::MemberState;
pub use model::{Failover, HistoryLine, Member, Status, SyncState};
pub use traits::{Dcs, DcsResult};
