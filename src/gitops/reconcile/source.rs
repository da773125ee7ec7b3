//! The repository source: the committed tree of a branch (never uncommitted edits), and
//! commits written back under `status/`.

use super::super::git::CommitInfo;
use std::path::{Path, PathBuf};

/// True when the remote needs a network transport (ssh, http, https): those go through the
/// system `git` command (the machine's SSH keys and credential helpers apply); local and
/// file:// remotes use libgit2 directly. `PATRONUS_GIT_CLI=1` forces the command for all.
pub fn uses_git_cli(url: &str) -> bool {
    std::env::var("PATRONUS_GIT_CLI").is_ok_and(|v| v == "1")
        || ["ssh://", "git@", "http://", "https://", "git://"]
            .iter()
            .any(|p| url.starts_with(p))
}

/// Runs `git` with `args` in `dir`; Err carries its stderr.
pub(super) fn git_cli(dir: Option<&Path>, args: &[&str]) -> Result<(), String> {
    let mut cmd = std::process::Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    let out = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Pushes the local `branch` to the same name on `origin` (never forced): by the `git`
/// command for a network remote, by libgit2 otherwise. Err is why it did not land (the
/// remote's rejection, or the transport's error).
pub(super) fn push_to_origin(dir: &Path, url: &str, branch: &str) -> Result<(), String> {
    let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
    if uses_git_cli(url) {
        return git_cli(Some(dir), &["push", "-q", "origin", &spec]);
    }
    let repo = git2::Repository::open(dir).map_err(err)?;
    let mut remote = repo.find_remote("origin").map_err(err)?;
    let rejected = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
    let seen = rejected.clone();
    let mut cb = git2::RemoteCallbacks::new();
    cb.push_update_reference(move |_, status| {
        if let Some(msg) = status {
            *seen.borrow_mut() = Some(msg.to_string());
        }
        Ok(())
    });
    let mut opts = git2::PushOptions::new();
    opts.remote_callbacks(cb);
    remote
        .push(&[spec.as_str()], Some(&mut opts))
        .map_err(err)?;
    let refused = rejected.borrow().clone();
    refused.map_or(Ok(()), Err)
}

/// Trailer naming the desired commit a status commit reflects.
pub const TRAILER: &str = "Desired-Commit:";

/// A local git repository followed by the reconciler (cloned into blocking tasks: git work
/// never runs on the async runtime's threads).
#[derive(Debug, Clone)]
pub struct Source {
    /// Repository working directory.
    pub dir: PathBuf,
    /// Private directory holding the last snapshot of the desired tree.
    pub snapshot: PathBuf,
    /// Remote URL when the repository is a clone we own (fetch + push), None for a local one.
    pub remote: Option<String>,
    /// `commit_back.branch`: status commits go to this branch instead of the checked-out one.
    pub status_branch: Option<String>,
}

pub(super) fn err(e: git2::Error) -> String {
    e.message().to_string()
}

/// Runs `f` on a clone of `source` in a blocking thread (`tokio::task::spawn_blocking`).
pub async fn blocking<T: Send + 'static>(
    source: &Source,
    f: impl FnOnce(&Source) -> T + Send + 'static,
) -> Result<T, String> {
    let s = source.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| format!("git task failed: {e}"))
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
            remote: None,
            status_branch: None,
        })
    }

    /// Clones `url` into `workdir` (or reuses the clone there) and follows its branch.
    pub fn clone_remote(url: &str, workdir: &Path) -> Result<Source, String> {
        let repo = match git2::Repository::open(workdir) {
            Ok(r) => {
                r.remote_set_url("origin", url).map_err(err)?;
                r
            }
            Err(_) if uses_git_cli(url) => {
                git_cli(None, &["clone", "-q", url, &workdir.display().to_string()])?;
                git2::Repository::open(workdir).map_err(err)?
            }
            Err(_) => {
                std::fs::create_dir_all(workdir)
                    .map_err(|e| format!("{}: {e}", workdir.display()))?;
                git2::Repository::clone(url, workdir)
                    .map_err(|e| format!("cannot clone {url}: {}", err(e)))?
            }
        };
        drop(repo);
        let mut s = Source::open(workdir)?;
        s.remote = Some(url.to_string());
        s.fetch()?;
        Ok(s)
    }

    fn branch(repo: &git2::Repository) -> String {
        repo.head()
            .ok()
            .and_then(|h| h.shorthand().ok().map(str::to_string))
            .unwrap_or_else(|| "main".into())
    }

    /// Fetches the remote branch and moves our clone to it (our unpushed status commits are
    /// dropped; they are recomputed). Returns true when HEAD moved.
    pub fn fetch(&self) -> Result<bool, String> {
        if self.remote.is_none() {
            return Ok(false);
        }
        let repo = git2::Repository::open(&self.dir).map_err(err)?;
        let branch = Self::branch(&repo);
        let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        if self.remote.as_deref().is_some_and(uses_git_cli) {
            git_cli(Some(&self.dir), &["fetch", "-q", "origin", &refspec])
                .map_err(|e| format!("fetch failed: {e}"))?;
        } else {
            let mut remote = repo.find_remote("origin").map_err(err)?;
            remote
                .fetch(&[refspec.as_str()], None, None)
                .map_err(|e| format!("fetch failed: {}", err(e)))?;
        }
        let theirs = repo
            .refname_to_id(&format!("refs/remotes/origin/{branch}"))
            .map_err(err)?;
        let ours = repo.head().ok().and_then(|h| h.target());
        if ours == Some(theirs) {
            return Ok(false);
        }
        if let Some(o) = ours {
            if repo.graph_descendant_of(o, theirs).unwrap_or(false) {
                return Ok(false); // we are ahead: status commits not pushed yet
            }
        }
        let obj = repo.find_object(theirs, None).map_err(err)?;
        repo.reset(&obj, git2::ResetType::Hard, None).map_err(err)?;
        Ok(true)
    }

    /// Pushes our branch (status commits) to the remote. A rejected push is never forced: we
    /// fetch, move to the remote branch and commit the status again on the next pass.
    pub fn push(&self) -> Result<(), String> {
        let Some(url) = self.remote.as_deref() else {
            return Ok(());
        };
        let repo = git2::Repository::open(&self.dir).map_err(err)?;
        let branch = match self.separate_status_branch(&repo) {
            Some(b) => b,
            None => Self::branch(&repo),
        };
        drop(repo);
        match push_to_origin(&self.dir, url, &branch) {
            Ok(()) => Ok(()),
            Err(reason) => Err(self.after_failed_push(&reason)),
        }
    }

    /// After a push that did not land: fetch, and drop our unpushed status commits (reset to
    /// the remote branch even when the fetch failed), so the status and its history events are
    /// committed again next pass on top of whatever the remote holds.
    fn after_failed_push(&self, reason: &str) -> String {
        if let Some(b) = git2::Repository::open(&self.dir)
            .ok()
            .and_then(|r| self.separate_status_branch(&r))
        {
            let moved = self.follow_remote_status_branch(&b);
            return match moved {
                Ok(()) => format!("push of {b} rejected ({reason}); moved to the remote {b}, the status is committed again next pass"),
                Err(e) => format!("push of {b} rejected ({reason}); {e}"),
            };
        }
        let fetched = self.fetch();
        let reset = git2::Repository::open(&self.dir)
            .map_err(err)
            .and_then(|repo| {
                let branch = Self::branch(&repo);
                let theirs = repo
                    .refname_to_id(&format!("refs/remotes/origin/{branch}"))
                    .map_err(err)?;
                let obj = repo.find_object(theirs, None).map_err(err)?;
                repo.reset(&obj, git2::ResetType::Hard, None).map_err(err)
            });
        let mut msg = format!(
            "push rejected ({reason}); moved to the remote branch, the status is committed again next pass"
        );
        for e in [fetched.err(), reset.err()].into_iter().flatten() {
            msg.push_str(&format!(" ({e})"));
        }
        msg
    }

    /// True when HEAD is commit `id` or descends from it (a status commit still on our
    /// branch, pushed or not; false once a rejected push moved us to the remote branch).
    pub fn holds(&self, id: &str) -> bool {
        let Ok(repo) = git2::Repository::open(&self.dir) else {
            return false;
        };
        let tip = match self.separate_status_branch(&repo) {
            Some(b) => repo.refname_to_id(&format!("refs/heads/{b}")).ok(),
            None => repo.head().ok().and_then(|h| h.target()),
        };
        let (Ok(id), Some(head)) = (git2::Oid::from_str(id), tip) else {
            return false;
        };
        head == id || repo.graph_descendant_of(head, id).unwrap_or(false)
    }

    /// The HEAD commit id, or None for an empty repository.
    #[cfg(test)]
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
        if let Some(b) = self.separate_status_branch(&repo) {
            return self.commit_on_status_branch(&repo, &b, files, author, desired, summary);
        }
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let mut tree = parent.as_ref().map(|p| p.tree()).transpose().map_err(err)?;
        let mut changed = false;
        for (rel, text) in files {
            if !rel.starts_with("status/") {
                return Err(format!("refusing to commit outside status/: {rel}"));
            }
            let same = tree
                .as_ref()
                .and_then(|t| t.get_path(Path::new(rel)).ok())
                .and_then(|e| repo.find_blob(e.id()).ok())
                .is_some_and(|b| b.content() == text.as_bytes());
            if same {
                continue;
            }
            let blob = repo.blob(text.as_bytes()).map_err(err)?;
            let parts: Vec<&str> = rel.split('/').collect();
            let oid = replace_blob(&repo, tree.as_ref(), &parts, blob).map_err(err)?;
            tree = Some(repo.find_tree(oid).map_err(err)?);
            changed = true;
        }
        let Some(tree) = tree.filter(|_| changed) else {
            return Ok(None);
        };
        let (name, email) = author
            .split_once('<')
            .map_or((author.trim(), "patronus@localhost"), |(n, e)| {
                (n.trim(), e.trim_end_matches('>').trim())
            });
        let sig = git2::Signature::now(name, email).map_err(err)?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let msg = format!("{summary}\n\n{TRAILER} {desired}\n");
        // The tree is HEAD's plus the status files only: whatever the user has staged stays
        // staged and out of our commit.
        let id = repo
            .commit(Some("HEAD"), &sig, &sig, &msg, &tree, &parents)
            .map_err(err)?;
        // Keep the working tree and index in step for the status files we wrote.
        let mut index = repo.index().map_err(err)?;
        for (rel, text) in files {
            let p = self.dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap_or(&self.dir)).map_err(|e| e.to_string())?;
            // Write beside and rename, so a reader never sees a half-written file.
            let tmp = p.with_extension("yaml.tmp");
            std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &p).map_err(|e| e.to_string())?;
            index.add_path(Path::new(rel)).map_err(err)?;
        }
        index.write().map_err(err)?;
        Ok(Some(id.to_string()))
    }
}

/// Rebuilds `tree` with the blob at `parts` replaced (creating directories as needed).
pub(super) fn replace_blob(
    repo: &git2::Repository,
    tree: Option<&git2::Tree>,
    parts: &[&str],
    blob: git2::Oid,
) -> Result<git2::Oid, git2::Error> {
    let mut b = repo.treebuilder(tree)?;
    match parts {
        [] => return Err(git2::Error::from_str("empty path")),
        [name] => {
            b.insert(name, blob, 0o100644)?;
        }
        [dir, rest @ ..] => {
            let sub = tree
                .and_then(|t| t.get_name(dir))
                .and_then(|e| e.to_object(repo).ok())
                .and_then(|o| o.into_tree().ok());
            let oid = replace_blob(repo, sub.as_ref(), rest, blob)?;
            b.insert(dir, oid, 0o040000)?;
        }
    }
    b.write()
}

impl Source {
    /// Commits the live value of a drifted key into `rel` on a new branch
    /// `patronus/adopt-<scope>-<time>` for review; the checked-out branch is not touched.
    pub fn adopt(
        &self,
        desired_sha: &str,
        rel: &str,
        scope: &str,
        key: &str,
        live: &serde_json::Value,
        author: &str,
    ) -> Result<String, String> {
        let repo = git2::Repository::open(&self.dir).map_err(err)?;
        let base = repo
            .find_commit(git2::Oid::from_str(desired_sha).map_err(err)?)
            .map_err(err)?;
        let tree = base.tree().map_err(err)?;
        let entry = tree.get_path(Path::new(rel)).map_err(err)?;
        let blob = repo.find_blob(entry.id()).map_err(err)?;
        let text = String::from_utf8_lossy(blob.content()).into_owned();
        let mut doc =
            crate::config::yaml::parse_yaml_str(&text).map_err(|e| format!("{rel}: {e}"))?;
        crate::config::set_path(&mut doc, &format!("config.{key}"), live.clone())?;
        let yaml = format!(
            "# Live value adopted by patronus for review ({key}).\n{}",
            serde_yaml::to_string(&doc).map_err(|e| e.to_string())?
        );
        let new_blob = repo.blob(yaml.as_bytes()).map_err(err)?;
        let parts: Vec<&str> = rel.split('/').collect();
        let new_tree = repo
            .find_tree(replace_blob(&repo, Some(&tree), &parts, new_blob).map_err(err)?)
            .map_err(err)?;
        let (name, email) = author
            .split_once('<')
            .map_or((author.trim(), "patronus@localhost"), |(n, e)| {
                (n.trim(), e.trim_end_matches('>').trim())
            });
        let sig = git2::Signature::now(name, email).map_err(err)?;
        let slug: String = key
            .rsplit('.')
            .next()
            .unwrap_or(key)
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
            .collect();
        let branch = format!(
            "patronus/adopt-{scope}-{}-{slug}",
            chrono::Utc::now().format("%Y%m%d%H%M%S")
        );
        let msg = format!("Adopt live {key} = {live} on {scope}\n\nThe live DCS value differs from git; merge this branch to keep it.\n");
        repo.commit(
            Some(&format!("refs/heads/{branch}")),
            &sig,
            &sig,
            &msg,
            &new_tree,
            &[&base],
        )
        .map_err(err)?;
        Ok(branch)
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
