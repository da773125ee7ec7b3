//! inotify on a local checkout: a change of `HEAD`, `packed-refs` or the checked-out branch's
//! ref file wakes the reconciler at once. Polling stays as the fallback (a remote repository,
//! whose clone only moves when we fetch; a filesystem without inotify; a watch that fails).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How often HEAD is still read while inotify watches the refs (the fallback): 5 s, or
/// `PATRONUS_REPO_POLL_SECS`.
pub fn fallback_poll() -> std::time::Duration {
    let secs = std::env::var("PATRONUS_REPO_POLL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    std::time::Duration::from_secs(secs)
}

/// The directories whose entries name the desired commit: the git directory (`HEAD`,
/// `packed-refs`) and the one holding the checked-out branch's loose ref.
fn watched_dirs(repo: &Path) -> Result<Vec<PathBuf>, String> {
    let r = git2::Repository::open(repo).map_err(|e| e.message().to_string())?;
    let git_dir = r.path().to_path_buf();
    let mut dirs = vec![git_dir.clone()];
    if let Some(parent) = r
        .head()
        .ok()
        .and_then(|h| h.name().ok().map(|n| git_dir.join(n)))
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(parent);
    } else {
        // An unborn branch: its ref will appear under refs/heads.
        dirs.push(git_dir.join("refs/heads"));
    }
    Ok(dirs)
}

/// Starts watching `repo`'s refs in a thread; each change sets the returned flag and calls
/// `wake`. Err (with the reason) when inotify is not available: polling alone then applies.
pub fn watch_refs(
    repo: &Path,
    wake: impl Fn() + Send + 'static,
) -> Result<Arc<AtomicBool>, String> {
    let dirs = watched_dirs(repo)?;
    let ino = Inotify::init(InitFlags::IN_CLOEXEC).map_err(|e| format!("inotify: {e}"))?;
    let mask = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE;
    for d in &dirs {
        ino.add_watch(d.as_path(), mask)
            .map_err(|e| format!("inotify watch on {}: {e}", d.display()))?;
    }
    let changed = Arc::new(AtomicBool::new(true));
    let flag = changed.clone();
    std::thread::Builder::new()
        .name("patronus-refs-watch".into())
        .spawn(move || loop {
            match ino.read_events() {
                Ok(events) if !events.is_empty() => {
                    flag.store(true, Ordering::SeqCst);
                    wake();
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::warn!("inotify on the repository stopped ({e}); polling only");
                    // Polling takes over: report a change so the next pass reads HEAD.
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the inotify thread: {e}"))?;
    tracing::info!(
        "watching {} for ref changes (inotify); polling every {} s as the fallback",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        fallback_poll().as_secs()
    );
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    #[test]
    fn a_commit_sets_the_flag_and_wakes() {
        let dir = std::env::temp_dir().join(format!("patronus-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = git2::Repository::init(&dir).unwrap();
        let sig = git2::Signature::now("t", "t@x").unwrap();
        let tree = repo
            .find_tree(repo.index().unwrap().write_tree().unwrap())
            .unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "first", &tree, &[])
            .unwrap();
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        let flag = watch_refs(&dir, move || {
            w.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        assert!(
            flag.swap(false, Ordering::SeqCst),
            "starts set: read HEAD once"
        );
        let parent = repo.head().unwrap().peel_to_commit().unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "second", &tree, &[&parent])
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(flag.load(Ordering::SeqCst), "the commit was seen");
        assert!(woken.load(Ordering::SeqCst) > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
