//! A rejected push drops our status commit (so its history events stay pending and are
//! committed again on top of the remote), a pushed one stays.

use super::*;

fn commit_file(repo: &git2::Repository, rel: &str, text: &str, msg: &str) {
    let dir = repo.workdir().unwrap().to_path_buf();
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(rel)).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Dana DBA", "dana@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
        .unwrap();
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "patronus-src-{tag}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_rejected_push_drops_the_status_commit_a_pushed_one_stays() {
    let root = scratch("push");
    let bare = root.join("remote.git");
    git2::Repository::init_bare(&bare).unwrap();
    let url = bare.display().to_string();
    // A person's clone: the first desired commit.
    let person = git2::Repository::clone(&url, root.join("person")).unwrap();
    commit_file(&person, "patronus.yaml", "dcs: {}\n", "initial");
    let mut origin = person.find_remote("origin").unwrap();
    let branch = person.head().unwrap().shorthand().unwrap().to_string();
    let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
    origin.push(&[spec.as_str()], None).unwrap();

    let src = Source::clone_remote(&url, &root.join("ours")).unwrap();
    let status = |text: &str| vec![("status/a/history.yaml".to_string(), text.to_string())];
    let first = src
        .commit_status(&status("- event: one\n"), "p <p@x>", "abc", "status")
        .unwrap()
        .unwrap();
    src.push().unwrap();
    assert!(
        src.holds(&first),
        "a pushed status commit stays on our branch"
    );

    // The remote moves on meanwhile: our next status commit is rejected.
    origin.fetch(&[spec.as_str()], None, None).unwrap();
    let theirs = person
        .refname_to_id(&format!("refs/remotes/origin/{branch}"))
        .unwrap();
    let obj = person.find_object(theirs, None).unwrap();
    person.reset(&obj, git2::ResetType::Hard, None).unwrap();
    commit_file(
        &person,
        "clusters/a/cluster.yaml",
        "config: {}\n",
        "a person's change",
    );
    origin.push(&[spec.as_str()], None).unwrap();
    let second = src
        .commit_status(
            &status("- event: one\n- event: two\n"),
            "p <p@x>",
            "abc",
            "status",
        )
        .unwrap()
        .unwrap();
    let e = src.push().unwrap_err();
    assert!(e.contains("push rejected"), "{e}");
    assert!(
        !src.holds(&second),
        "the rejected status commit is dropped: its events must be committed again"
    );
    assert!(src.holds(&first));
    let text = std::fs::read_to_string(root.join("ours/status/a/history.yaml")).unwrap();
    assert_eq!(
        text, "- event: one\n",
        "the work tree follows the remote branch"
    );
    assert!(root.join("ours/clusters/a/cluster.yaml").exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn status_commits_go_to_the_status_branch_and_leave_head_alone() {
    let root = scratch("branch");
    let bare = root.join("remote.git");
    git2::Repository::init_bare(&bare).unwrap();
    let url = bare.display().to_string();
    let person = git2::Repository::clone(&url, root.join("person")).unwrap();
    commit_file(&person, "patronus.yaml", "dcs: {}\n", "initial");
    let branch = person.head().unwrap().shorthand().unwrap().to_string();
    let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
    person
        .find_remote("origin")
        .unwrap()
        .push(&[spec.as_str()], None)
        .unwrap();

    let mut src = Source::clone_remote(&url, &root.join("ours")).unwrap();
    src.status_branch = Some("patronus-status".into());
    let desired = src.head().unwrap();
    let status = |text: &str| vec![("status/a/history.yaml".to_string(), text.to_string())];
    let first = src
        .commit_status(&status("- event: one\n"), "p <p@x>", &desired, "status")
        .unwrap()
        .unwrap();
    src.push().unwrap();
    assert_eq!(
        src.head().as_deref(),
        Some(desired.as_str()),
        "HEAD not moved"
    );
    assert!(
        !root.join("ours/status").exists(),
        "the work tree is not touched"
    );
    assert_eq!(
        src.status_text("status/a/history.yaml").as_deref(),
        Some("- event: one\n")
    );
    assert!(src.holds(&first));
    let second = src
        .commit_status(
            &status("- event: one\n- event: two\n"),
            "p <p@x>",
            &desired,
            "status",
        )
        .unwrap()
        .unwrap();
    src.push().unwrap();
    let remote = git2::Repository::open_bare(&bare).unwrap();
    let tip = remote.refname_to_id("refs/heads/patronus-status").unwrap();
    assert_eq!(tip.to_string(), second, "pushed to the status branch");
    let parent = remote.find_commit(tip).unwrap().parent_id(0).unwrap();
    assert_eq!(parent.to_string(), first);
    assert_eq!(
        remote
            .refname_to_id(&format!("refs/heads/{branch}"))
            .unwrap()
            .to_string(),
        desired,
        "the desired-state branch only holds people's commits"
    );
    let _ = std::fs::remove_dir_all(&root);
}
