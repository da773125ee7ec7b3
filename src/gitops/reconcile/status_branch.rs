//! `commit_back.branch`: status commits on their own branch (e.g. `patronus-status`), so the
//! desired-state branch only ever holds people's commits. The branch starts at the desired
//! commit; each status commit is its tip's tree plus the status files. The checked-out
//! branch, the index and the working tree are not touched.

use super::source::{err, git_cli, push_to_origin, replace_blob, uses_git_cli, Source, TRAILER};
use std::path::Path;

/// Splits `Name <email>` (default email `patronus@localhost`).
pub(super) fn signature(author: &str) -> Result<git2::Signature<'static>, String> {
    let (name, email) = author
        .split_once('<')
        .map_or((author.trim(), "patronus@localhost"), |(n, e)| {
            (n.trim(), e.trim_end_matches('>').trim())
        });
    git2::Signature::now(name, email).map_err(err)
}

impl Source {
    /// The status branch when it is set and is not the checked-out branch.
    pub(super) fn separate_status_branch(&self, repo: &git2::Repository) -> Option<String> {
        let b = self.status_branch.as_deref().filter(|b| !b.is_empty())?;
        let head = repo.head().ok();
        let current = head.as_ref().and_then(|h| h.shorthand().ok());
        (current != Some(b)).then(|| b.to_string())
    }

    /// The committed text of a status file: from the status branch when there is one, else
    /// from the working tree.
    pub fn status_text(&self, rel: &str) -> Option<String> {
        let repo = git2::Repository::open(&self.dir).ok()?;
        let Some(b) = self.separate_status_branch(&repo) else {
            return std::fs::read_to_string(self.dir.join(rel)).ok();
        };
        let tip = repo.find_reference(&format!("refs/heads/{b}")).ok()?;
        let tree = tip.peel_to_commit().ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(rel)).ok()?;
        let blob = repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }

    /// [`Source::commit_status`] onto `branch` (created at `desired` when absent).
    pub(super) fn commit_on_status_branch(
        &self,
        repo: &git2::Repository,
        branch: &str,
        files: &[(String, String)],
        author: &str,
        desired: &str,
        summary: &str,
    ) -> Result<Option<String>, String> {
        let refname = format!("refs/heads/{branch}");
        let parent = match repo.find_reference(&refname) {
            Ok(r) => r.peel_to_commit().map_err(err)?,
            Err(_) => repo
                .find_commit(git2::Oid::from_str(desired).map_err(err)?)
                .map_err(err)?,
        };
        let mut tree = parent.tree().map_err(err)?;
        let mut changed = false;
        for (rel, text) in files {
            if !rel.starts_with("status/") {
                return Err(format!("refusing to commit outside status/: {rel}"));
            }
            let same = tree
                .get_path(Path::new(rel))
                .ok()
                .and_then(|e| repo.find_blob(e.id()).ok())
                .is_some_and(|b| b.content() == text.as_bytes());
            if same {
                continue;
            }
            let blob = repo.blob(text.as_bytes()).map_err(err)?;
            let parts: Vec<&str> = rel.split('/').collect();
            let oid = replace_blob(repo, Some(&tree), &parts, blob).map_err(err)?;
            tree = repo.find_tree(oid).map_err(err)?;
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        let sig = signature(author)?;
        let msg = format!("{summary}\n\n{TRAILER} {desired}\n");
        let id = repo
            .commit(Some(&refname), &sig, &sig, &msg, &tree, &[&parent])
            .map_err(err)?;
        Ok(Some(id.to_string()))
    }

    /// After a rejected push of the status branch: fetch the remote's and move ours to it (our
    /// unpushed status commits are dropped; they are committed again on top of it).
    pub(super) fn follow_remote_status_branch(&self, branch: &str) -> Result<(), String> {
        let url = self.remote.as_deref().unwrap_or_default();
        let spec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        let repo = git2::Repository::open(&self.dir).map_err(err)?;
        if uses_git_cli(url) {
            git_cli(Some(&self.dir), &["fetch", "-q", "origin", &spec])?;
        } else {
            let mut remote = repo.find_remote("origin").map_err(err)?;
            remote
                .fetch(&[spec.as_str()], None, None)
                .map_err(|e| format!("fetch failed: {}", err(e)))?;
        }
        let theirs = repo
            .refname_to_id(&format!("refs/remotes/origin/{branch}"))
            .map_err(err)?;
        repo.reference(
            &format!("refs/heads/{branch}"),
            theirs,
            true,
            "patronus: follow the remote status branch",
        )
        .map_err(err)?;
        Ok(())
    }

    /// Pushes our local branch `branch` to the same name on the remote (adopt branches);
    /// nothing for a local repository.
    pub fn push_branch(&self, branch: &str) -> Result<(), String> {
        let Some(url) = self.remote.as_deref() else {
            return Ok(());
        };
        push_to_origin(&self.dir, url, branch)
            .map_err(|reason| format!("push of {branch} did not land: {reason}"))
    }
}
