//! Patroni's DCS data model: key layout, the cluster view and the member JSON (no client).

pub mod cluster;
pub mod keys;
pub mod member_state;
pub mod model;
#[cfg(test)]
mod prop_tests;
pub mod value_error;

pub use cluster::{Cluster, Leader, MemberEntry, RawKv, Versioned};
pub use keys::Keys;
pub use member_state::MemberState;
pub use model::{Failover, HistoryLine, Member, Status, SyncState};
pub use value_error::ValueError;
