//! The GitOps side: desired-state repository, validation (JSON Schema + PostgreSQL's
//! parameter catalog), plan (pure diff), apply (CAS), member tags.

pub mod apply;
pub mod connection;
pub mod dashboard;
pub mod desired;
pub mod error;
pub mod git;
pub mod guc;
pub mod observed;
pub mod plan;
#[cfg(test)]
mod prop_tests;
pub mod reconcile;
pub mod render;
pub mod repo_secrets;
pub mod validate;
pub mod window;

pub use error::{GitopsError, RepoProblem};
