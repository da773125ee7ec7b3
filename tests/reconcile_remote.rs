//! Issue: the reconciler follows a remote repository (here a bare repository reached by
//! file://): clone, fetch on POST /hooks/git, apply, and push status commits back — a
//! rejected push is rebased, never forced.

mod common;

use common::git::{git, spawn_reconciler};
use common::*;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_follows_a_remote_repository_and_pushes_status() {
    follow_remote(false).await;
}

/// The same through the system `git` command, the transport used for ssh/http(s) remotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_follows_a_remote_repository_through_the_git_command() {
    follow_remote(true).await;
}

async fn follow_remote(git_cli: bool) {
    which("git").expect("git is installed (ci/install-deps.sh)");
    let c = TestCluster::start(
        "remote",
        ClusterOpts {
            members: 2,
            ..ClusterOpts::default()
        },
    )
    .await;
    c.wait_healthy(T).await;
    let base = temp_dir("remote");
    let origin = base.join("origin.git");
    assert!(git(
        &base,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            origin.to_str().unwrap()
        ]
    ));
    let user = base.join("user");
    assert!(git(
        &base,
        &[
            "clone",
            "-q",
            origin.to_str().unwrap(),
            user.to_str().unwrap()
        ]
    ));
    assert!(git(&user, &["checkout", "-q", "-b", "main"]));
    std::fs::write(
        user.join("patronus.yaml"),
        format!(
            "dcs:\n  etcd3:\n    hosts: [\"{}\"]\ndrift:\n  keys:\n    postgresql.parameters.work_mem: adopt\n",
            c.etcd.endpoint()
        ),
    )
    .unwrap();
    let file = user.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 6MB\n",
    )
    .unwrap();
    assert!(git(&user, &["add", "-A"]));
    assert!(git(&user, &["commit", "-qm", "initial"]));
    assert!(git(&user, &["push", "-q", "origin", "main"]));

    let port = free_port();
    let repo_url = format!("file://{}", origin.display());
    let listen = format!("127.0.0.1:{port}");
    let work = base.join("work");
    let _d = spawn_reconciler(
        &base.join("reconcile.log"),
        [
            "--fetch-interval",
            "30",
            "--listen",
            &listen,
            "--workdir",
            work.to_str().unwrap(),
            "--repo",
            &repo_url,
        ],
        &[("PATRONUS_GIT_CLI", if git_cli { "1" } else { "0" })],
    );
    for i in 0..2 {
        wait_for("the remote's desired state applied", T, || async {
            (c.query_one(i, "SHOW work_mem").await? == "6MB").then_some(())
        })
        .await;
    }
    // Status commits reach the remote.
    let origin_log = || {
        let o = Command::new("git")
            .arg("--git-dir")
            .arg(&origin)
            .args(["log", "main", "--format=%B"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    wait_for("status pushed to the remote", T, || async {
        origin_log().contains("Desired-Commit:").then_some(())
    })
    .await;

    // The user pulls (their branch moved: the reconciler pushed), changes, pushes; the hook
    // makes the reconciler fetch at once instead of after its 30 s interval.
    std::fs::write(
        &file,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 7MB\n",
    )
    .unwrap();
    assert!(git(&user, &["commit", "-qam", "work_mem 7MB"]));
    wait_for("the user's push", T, || async {
        (git(&user, &["pull", "-q", "--rebase", "origin", "main"])
            && git(&user, &["push", "-q", "origin", "main"]))
        .then_some(())
    })
    .await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/hooks/git"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    for i in 0..2 {
        wait_for("the pushed commit applied", T, || async {
            (c.query_one(i, "SHOW work_mem").await? == "7MB").then_some(())
        })
        .await;
    }
    // History on the remote is linear: the user's commit, then status commits on top.
    let log = origin_log();
    assert!(log.contains("work_mem 7MB"), "{log}");

    // adopt: the review branch with the live value is pushed to the remote.
    let li = c.wait_healthy(T).await;
    let (code, body) = c
        .send(
            li,
            reqwest::Method::PATCH,
            "/config",
            r#"{"postgresql":{"parameters":{"work_mem":"9MB"}}}"#,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for("the adopt branch on the remote", T, || async {
        let o = Command::new("git")
            .arg("--git-dir")
            .arg(&origin)
            .args([
                "for-each-ref",
                "--format=%(refname)",
                "refs/heads/patronus/",
            ])
            .output()
            .ok()?;
        let refs = String::from_utf8_lossy(&o.stdout).into_owned();
        let branch = refs.lines().find(|r| r.contains("/adopt-"))?.to_string();
        let file = Command::new("git")
            .arg("--git-dir")
            .arg(&origin)
            .args([
                "show",
                &format!("{branch}:clusters/{}/cluster.yaml", c.scope),
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&file.stdout)
            .contains("work_mem: 9MB")
            .then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&base);
}
