//! The GitOps side: desired-state repository, validation (JSON Schema + PostgreSQL's
//! parameter catalog), plan (pure diff), apply (CAS), member tags.

pub(crate) mod apply;
pub(crate) mod connection;
pub mod dashboard;
pub(crate) mod desired;
pub(crate) mod error;
pub(crate) mod git;
pub(crate) mod guc;
pub(crate) mod observed;
pub(crate) mod plan;
#[cfg(test)]
mod prop_tests;
pub(crate) mod reconcile;
pub(crate) mod render;
pub(crate) mod repo_secrets;
pub(crate) mod validate;
pub(crate) mod window;

pub use error::{GitopsError, RepoProblem};
