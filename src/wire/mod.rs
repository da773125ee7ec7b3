//! Wire structs shared by the REST server, the agent's calls to its peers and the CLI: the
//! bodies as a reader sees them. Neutral ground, so that the agent reads a peer's status
//! without depending on the REST server (`api` depends on `agent`, never the reverse).

mod patroni;
mod restart;

pub use patroni::PatroniStatus;
pub use restart::{RestartAnswer, NOT_SATISFIED};
