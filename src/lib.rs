//! patronus: PostgreSQL high availability compatible with Patroni, plus a GitOps reconciler.

pub mod dcs;
