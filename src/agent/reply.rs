//! The HA loop's answer to an operator request: the vocabulary lives in the pure core
//! ([`crate::ha::reply`]), where the agent machine produces it.

pub use crate::ha::reply::{Reply, RequestError, RequestKind};
