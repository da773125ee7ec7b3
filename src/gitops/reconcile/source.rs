//! The repository source: the committed tree of a branch (never uncommitted edits), and
//! commits written back under `status/`.

use super::super::git::CommitInfo;
use std::path::{Path, PathBuf};

/// Trailer naming the desired commit a status commit reflects.
pub const TRAILER: &str = "Desired-Commit:";

/// A local git repository followed by the reconciler.
pub struct Source {
    /// Repository working directory.
    pub dir: PathBuf,
    /// Private directory holding the last snapshot of the desired tree.
    pub snapshot: PathBuf,
}

fn err(e: git2::Error) -> String {
    e.message().to_string()
}

impl Source {
    /// Opens `dir` (must be a git repository).
    pub fn open(dir: &Path) -> Result<Source, String> {
        git2::Repository::open(dir)
            .map_err(|e| format!("{}: not a git repository: {}", dir.display(), err(e)))?;
        let snapshot =
            std::env::temp_dir().join(format!("patronus-desired-{}", std::process::id()));
        Ok(Source {
            dir: dir.to_path_buf(),
            snapshot,
        })
    }

    /// The HEAD commit id, or None for an empty repository.
    pub fn head(&self) -> Option<String> {
        let repo = git2::Repository::open(&self.dir).ok()?;
        let id = repo.head().ok()?.peel_to_commit().ok()?.id();
        Some(id.to_string())
    }

    /// The last commit that is not one of ours (status-only commits carry the trailer).
    pub fn desired_head(&self) -> Option<CommitInfo> {
        let repo = git2::Repository::open(&self.dir).ok()?;
        let mut c = repo.head().ok()?.peel_to_commit().ok()?;
        while c.message().ok().is_some_and(|m| m.contains(TRAILER)) {
            c = c.parent(0).ok()?;
        }
        let a = c.author();
        Some(CommitInfo {
            sha: c.id().to_string(),
            author: format!("{} <{}>", a.name().unwrap_or(""), a.email().unwrap_or("")),
            time: chrono::DateTime::from_timestamp(c.time().seconds(), 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            summary: c.summary().ok().flatten().unwrap_or("").to_string(),
        })
    }

    /// Writes the tree of `sha` (patronus.yaml, clusters/, status/) into the snapshot dir.
    pub fn materialize(&self, sha: &str) -> Result<&Path, String> {
        let repo = git2::Repository::open(&self.dir).map_err(err)?;
        let oid = git2::Oid::from_str(sha).map_err(err)?;
        let tree = repo.find_commit(oid).map_err(err)?.tree().map_err(err)?;
        let _ = std::fs::remove_dir_all(&self.snapshot);
        std::fs::create_dir_all(&self.snapshot).map_err(|e| e.to_string())?;
        let mut failure = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            let name = entry.name().unwrap_or("");
            let rel = format!("{root}{name}");
            let wanted = rel == "patronus.yaml"
                || rel.starts_with("clusters/")
                || rel.starts_with("status/");
            if entry.kind() == Some(git2::ObjectType::Blob) && wanted {
                let written = repo.find_blob(entry.id()).map_err(err).and_then(|b| {
                    let p = self.snapshot.join(&rel);
                    std::fs::create_dir_all(p.parent().unwrap_or(&self.snapshot))
                        .map_err(|e| e.to_string())?;
                    std::fs::write(&p, b.content()).map_err(|e| e.to_string())
                });
                if let Err(e) = written {
                    failure = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(err)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(&self.snapshot),
        }
    }

    /// Commits `files` (paths under `status/`) on the current branch when they changed;
    /// returns the new commit id, or None when nothing changed.
    pub fn commit_status(
        &self,
        files: &[(String, String)],
        author: &str,
        desired: &str,
        summary: &str,
    ) -> Result<Option<String>, String> {
        let repo = git2::Repository::open(&self.dir).map_err(err)?;
        let mut index = repo.index().map_err(err)?;
        let mut changed = false;
        for (rel, text) in files {
            if !rel.starts_with("status/") {
                return Err(format!("refusing to commit outside status/: {rel}"));
            }
            let p = self.dir.join(rel);
            if std::fs::read_to_string(&p).is_ok_and(|old| old == *text)
                && index.get_path(Path::new(rel), 0).is_some()
            {
                continue;
            }
            std::fs::create_dir_all(p.parent().unwrap_or(&self.dir)).map_err(|e| e.to_string())?;
            std::fs::write(&p, text).map_err(|e| e.to_string())?;
            index.add_path(Path::new(rel)).map_err(err)?;
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        index.write().map_err(err)?;
        let tree = repo
            .find_tree(index.write_tree().map_err(err)?)
            .map_err(err)?;
        let (name, email) = author
            .split_once('<')
            .map_or((author.trim(), "patronus@localhost"), |(n, e)| {
                (n.trim(), e.trim_end_matches('>').trim())
            });
        let sig = git2::Signature::now(name, email).map_err(err)?;
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let msg = format!("{summary}\n\n{TRAILER} {desired}\n");
        let id = repo
            .commit(Some("HEAD"), &sig, &sig, &msg, &tree, &parents)
            .map_err(err)?;
        Ok(Some(id.to_string()))
    }
}
