//! The commit the desired state comes from (sha, author, time), read with git2.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Who asked for a change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Full sha.
    pub sha: String,
    /// `Name <email>`.
    pub author: String,
    /// Commit time, RFC 3339.
    pub time: String,
    /// First line of the message.
    pub summary: String,
}

/// HEAD of the repository containing `dir`, if it is a git repository.
pub fn head_commit(dir: &Path) -> Option<CommitInfo> {
    let repo = git2::Repository::discover(dir).ok()?;
    let commit = repo.head().ok()?.peel_to_commit().ok()?;
    let a = commit.author();
    let t = chrono::DateTime::from_timestamp(commit.time().seconds(), 0)?;
    Some(CommitInfo {
        sha: commit.id().to_string(),
        author: format!("{} <{}>", a.name().unwrap_or(""), a.email().unwrap_or("")),
        time: t.to_rfc3339(),
        summary: commit.summary().ok().flatten().unwrap_or("").to_string(),
    })
}
