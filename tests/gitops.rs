//! Issue: GitOps part 1 on a real git repository and a real 3-member cluster — validate, plan
//! (exit codes, diff, classification), apply (CAS, idempotent, stale plans refused, nothing
//! applied from an invalid repo) and declarative member tags.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

struct Repo {
    dir: PathBuf,
    repo: git2::Repository,
}

impl Repo {
    fn new(etcd: &str) -> Repo {
        let dir = temp_dir("repo");
        let repo = git2::Repository::init(&dir).expect("git init");
        std::fs::write(
            dir.join("patronus.yaml"),
            format!("dcs:\n  etcd3:\n    hosts: [\"{etcd}\"]\n  namespace: /service\n"),
        )
        .unwrap();
        Repo { dir, repo }
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn commit(&self, msg: &str) -> String {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("Dana DBA", "dana@example.com").unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
            .unwrap()
            .to_string()
    }
}

fn patronus(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patronus"))
        .args(args)
        .arg(dir)
        .env("PATRONUS_MIN_TTL", "5")
        .output()
        .unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patronus"))
        .args(args)
        .env("PATRONUS_MIN_TTL", "5")
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn s(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn cluster_yaml(params: &str, members: &str) -> String {
    format!("config:\n  postgresql:\n    parameters:\n{params}{members}")
}

async fn live_config(c: &TestCluster) -> Value {
    let kv = c
        .etcd
        .get_prefix(&format!("/service/{}/config", c.scope))
        .await;
    serde_json::from_str(&kv[0].1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_cycle_on_a_real_repo_and_cluster() {
    let mut c = TestCluster::start("git", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let repo = Repo::new(&c.etcd.endpoint());
    let file = format!("clusters/{}/cluster.yaml", c.scope);
    let d = repo.dir.clone();
    let repo_arg = d.to_str().unwrap();

    // A work_mem change: plan exits 2 with the diff and "reload"; apply; every member has it.
    repo.write(&file, &cluster_yaml("      work_mem: 8MB\n", ""));
    let sha = repo.commit("work_mem 8MB for the reporting queries");
    let o = patronus(&["validate"], &d);
    assert_eq!(code(&o), 0, "{}", s(&o));
    let o = run(&["plan", "--repo", repo_arg]);
    assert_eq!(code(&o), 2, "{}", s(&o));
    let text = s(&o);
    assert!(
        text.contains("work_mem: (unset) -> 8MB  [reload]"),
        "{text}"
    );
    assert!(text.contains("+    work_mem: 8MB"), "{text}");
    assert!(text.contains("unmanaged (live only, kept)"), "{text}");
    let o = run(&["plan", "--repo", repo_arg, "--format", "markdown"]);
    assert!(
        s(&o).contains("| `work_mem` | `(unset)` | `8MB` | reload |"),
        "{}",
        s(&o)
    );
    let o = run(&["apply", "--repo", repo_arg]);
    assert_eq!(code(&o), 0, "{}", s(&o));
    for i in 0..3 {
        wait_for("work_mem 8MB on every member", T, || async {
            (c.query_one(i, "SHOW work_mem").await? == "8MB").then_some(())
        })
        .await;
    }
    let o = run(&["plan", "--repo", repo_arg]);
    assert_eq!(code(&o), 0, "{}", s(&o));
    let o = run(&["apply", "--repo", repo_arg]);
    assert!(s(&o).contains("no changes"), "idempotent: {}", s(&o));
    let g: Value = serde_json::from_str(
        &c.etcd
            .get_prefix(&format!("/service/{}/gitops", c.scope))
            .await[0]
            .1,
    )
    .unwrap();
    assert_eq!(g["applied"]["commit"], sha.as_str());
    assert_eq!(g["applied"]["author"], "Dana DBA <dana@example.com>");
    let live = live_config(&c).await;
    assert_eq!(live["ttl"], 10, "unmanaged keys kept");

    // shared_buffers is a restart: pending_restart on every member after apply.
    repo.write(
        &file,
        &cluster_yaml("      work_mem: 8MB\n      shared_buffers: 24MB\n", ""),
    );
    repo.commit("shared_buffers 24MB");
    let o = run(&["plan", "--repo", repo_arg, "--format", "json"]);
    assert_eq!(code(&o), 2);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["clusters"][0]["params"][0]["class"], "restart");
    assert_eq!(run(&["apply", "--repo", repo_arg]).status.code(), Some(0));
    wait_for("pending_restart on every member", T, || async {
        let kvs = c
            .etcd
            .get_prefix(&format!("/service/{}/members/", c.scope))
            .await;
        let all = kvs.len() == 3
            && kvs.iter().all(|(_, v)| {
                let m: Value = serde_json::from_str(v).unwrap_or_default();
                m["pending_restart"] == true
                    && m["pending_restart_reason"]["shared_buffers"]["new_value"] == "24MB"
            });
        all.then_some(())
    })
    .await;

    // A max_connections decrease is planned primary-first.
    repo.write(
        &file,
        &cluster_yaml(
            "      work_mem: 8MB\n      shared_buffers: 24MB\n      max_connections: 40\n",
            "",
        ),
    );
    repo.commit("fewer connections");
    let o = run(&["plan", "--repo", repo_arg, "--format", "json"]);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &plan["clusters"][0];
    assert_eq!(p["params"][0]["name"], "max_connections");
    assert_eq!(p["params"][0]["class"], "restart-primary-first");
    assert_eq!(
        p["restart_waves"][0][0],
        c.nodes[li].name.as_str(),
        "primary first: {p}"
    );

    // A saved plan goes stale when someone changes the config behind git's back.
    let planfile = repo.dir.join("plan.json");
    let o = run(&[
        "plan",
        "--repo",
        repo_arg,
        "--format",
        "json",
        "--out",
        planfile.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    let r = reqwest::Client::new()
        .patch(format!("http://127.0.0.1:{}/config", c.nodes[li].api_port))
        .body(r#"{"postgresql":{"parameters":{"temp_buffers":"16MB"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let before = live_config(&c).await;
    let o = run(&[
        "apply",
        "--repo",
        repo_arg,
        "--plan",
        planfile.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(s(&o).contains("plan is stale"), "{}", s(&o));
    assert_eq!(live_config(&c).await, before, "a stale plan writes nothing");

    // Invalid repositories: every problem with file:path, exit 1, nothing applied.
    repo.write(
        &file,
        &cluster_yaml(
            "      work_mem: 12 parsecs\n      max_connections: -1\n",
            "members:\n  nosuch:\n    tags: {nofailover: true}\n",
        ),
    );
    repo.commit("broken");
    let o = patronus(&["validate"], &d);
    assert_eq!(code(&o), 1);
    let out = s(&o);
    assert!(
        out.contains(&format!(
            "{file}: config.postgresql.parameters.work_mem: invalid value"
        )),
        "{out}"
    );
    assert!(
        out.contains("config.postgresql.parameters.max_connections: -1 is outside the valid range"),
        "{out}"
    );
    let o = run(&["plan", "--repo", repo_arg]);
    assert_eq!(code(&o), 1, "{}", s(&o));
    let o = run(&["apply", "--repo", repo_arg]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        live_config(&c).await,
        before,
        "an invalid repo applies nothing"
    );
    repo.write(
        &file,
        &cluster_yaml(
            "      work_mem: 8MB\n",
            "members:\n  nosuch:\n    tags: {nofailover: true}\n",
        ),
    );
    repo.commit("tags for a member that does not exist");
    let o = run(&["plan", "--repo", repo_arg]);
    assert_eq!(code(&o), 1);
    assert!(s(&o).contains("unknown member 'nosuch'"), "{}", s(&o));
    let o = run(&["plan", "--repo", repo_arg, "--cluster", "nosuch"]);
    assert_eq!(code(&o), 1);
    assert!(s(&o).contains("unknown cluster 'nosuch'"), "{}", s(&o));

    // Declarative tags: nofailover on a replica through git makes it ineligible, no restart.
    let (ri, other) = ((li + 1) % 3, (li + 2) % 3);
    let replica = c.nodes[ri].name.clone();
    repo.write(
        &file,
        &cluster_yaml(
            "      work_mem: 8MB\n",
            &format!("members:\n  {replica}:\n    tags:\n      nofailover: true\n"),
        ),
    );
    repo.commit("keep the DR replica out of failovers");
    let o = run(&["apply", "--repo", repo_arg]);
    assert_eq!(code(&o), 0, "{}", s(&o));
    wait_for("the tag in the member key", T, || async {
        let kv = c
            .etcd
            .get_prefix(&format!("/service/{}/members/{replica}", c.scope))
            .await;
        let m: Value = serde_json::from_str(&kv.first()?.1).ok()?;
        (m["tags"]["nofailover"] == true).then_some(())
    })
    .await;
    let (code_tag, _) = c.get(ri, "/replica?tag_nofailover=true").await.unwrap();
    assert_eq!(code_tag, 200);
    // Leave the tagged replica as the only candidate: it must not take over.
    c.kill_agent(other);
    c.kill_agent(li);
    c.kill_postmaster(li);
    let leader = c.nodes[li].name.clone();
    wait_for("the old leader key to expire", T, || async {
        (c.leader().await.as_deref() != Some(leader.as_str())).then_some(())
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(c.opts.ttl);
    while std::time::Instant::now() < deadline {
        assert_ne!(
            c.leader().await.as_deref(),
            Some(replica.as_str()),
            "a nofailover member took the lock"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        c.log_text(ri).contains("not allowed to promote"),
        "the tagged member declined"
    );
    c.start_agent(other);
    let new = wait_for("the untagged replica to lead", T, || async {
        c.leader().await
    })
    .await;
    assert_eq!(new, c.nodes[other].name);
}
