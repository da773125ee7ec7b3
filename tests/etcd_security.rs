//! Issue #14 (etcd and agents secured), end to end with real etcd, PostgreSQL 15 and the
//! binary. TLS case: 3 members on a 3-member etcd requiring client certificates, their REST
//! APIs over HTTPS with Basic auth; `patronus list`, `plan`, `apply` and the `reconcile`
//! daemon (a commit applied; a declared switchover fails without `ctl.cacert`, naming the
//! agent and `UnknownIssuer`, then runs once with it and `PATRONI_CTL_*` credentials); a
//! kill -9 failover. RBAC case ([`rbac`]): 3 members on etcd with users, a wrong password
//! named, a switchover against agents requiring Basic auth (401 first), https webhooks, a
//! kill -9 failover and an etcd restart. Wrong CA, missing client certificate and wrong
//! password each fail naming the endpoint; no password accepted in the repository.

mod common;

use common::certs::{CertFiles, TestCa};
use common::git::{commit, Daemon};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "etcd_security/rbac.rs"]
mod rbac;

const T: Duration = Duration::from_secs(120);

/// Runs the binary with `args` and `env`: (exit code, stdout + stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_patronus"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("PATRONICTL_CONFIG_FILE")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .expect("run patronus");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `key` encrypted as PKCS#8 with `password` (`openssl pkcs8 -topk8`), beside it.
fn encrypt_key(key: &Path, password: &str) -> PathBuf {
    let out = key.with_extension("enc.key");
    let openssl = which("openssl").expect("openssl is not installed: apt-get install openssl");
    let status = Command::new(openssl)
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(key)
        .arg("-out")
        .arg(&out)
        .arg("-passout")
        .arg(format!("pass:{password}"))
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl pkcs8 failed");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{text}");
    out
}

/// A desired-state repository (committed) for the cluster of `c`.
fn repo(c: &TestCluster, settings: &str, cluster_yaml: &str) -> PathBuf {
    let dir = temp_dir("secrepo");
    git2::Repository::init(&dir).unwrap();
    std::fs::write(dir.join("patronus.yaml"), settings).unwrap();
    let f = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(f, cluster_yaml).unwrap();
    commit(&dir, "initial");
    dir
}

/// The cluster options of a TLS etcd (3 members, client certificates required) and 3
/// agents using an encrypted client key, serving their REST API over HTTPS (a certificate of
/// `api_ca`) with Basic auth; the agents' etcd certificate files.
fn tls_opts(ca: &TestCa, api_ca: &TestCa) -> (ClusterOpts, CertFiles) {
    let agent = ca.client("patronus");
    // The agents' key encrypted (PKCS#8), with etcd3.key_password.
    let encrypted = encrypt_key(&agent.key, "etcd-key-pw-it");
    let opts = ClusterOpts {
        members: 3,
        rest_auth: Some(("admin".into(), "rest-pw-it".into())),
        rest_tls: Some(RestTls {
            ca: api_ca.ca_file.clone(),
            server: api_ca.server("api"),
            client: None,
            verify_client: "none".into(),
        }),
        etcd_members: 3,
        etcd_security: EtcdSecurity {
            tls: Some(EtcdTlsFiles {
                ca: ca.ca_file.clone(),
                server: ca.server("etcd-server"),
                client_cert_auth: true,
                harness: ca.client("harness"),
            }),
        },
        etcd3_extra: format!(
            "  protocol: https\n  cacert: {}\n  cert: {}\n  key: {}\n  key_password: etcd-key-pw-it\n",
            s(&ca.ca_file),
            s(&agent.cert),
            s(&encrypted)
        ),
        ..Default::default()
    };
    (opts, agent)
}

/// Whether `text` names one of the etcd members (any: the first attempt may fail without
/// saying why and move on to the next member).
fn names_an_endpoint(c: &TestCluster, text: &str) -> bool {
    (0..c.etcd.len()).any(|i| {
        let url = format!("etcd https://127.0.0.1:{}: ", c.etcd.member(i).port);
        text.contains(&url)
    })
}

/// A `-c` file for `c` over https with `tls` (lines of the etcd3 section).
fn tls_ctl_file(c: &TestCluster, name: &str, tls: &str) -> PathBuf {
    let p = c.dir.join(name);
    let body = format!(
        "scope: {}\netcd3:\n  hosts: {}\n  protocol: https\n{tls}",
        c.scope,
        c.etcd.endpoints()
    );
    std::fs::write(&p, body).unwrap();
    p
}

/// `patronus list` with a -c file (patronictl's etcd3 keys); a CA that did not issue etcd's
/// certificate is refused at once, naming the endpoint. Returns the good -c file.
fn list_over_tls(c: &TestCluster, pki: &Path, ca: &TestCa, agent: &CertFiles) -> PathBuf {
    let (cert, key) = (s(&agent.cert), s(&agent.key));
    let identity = format!("  cert: {cert}\n  key: {key}\n");
    let good = tls_ctl_file(
        c,
        "ctl.yml",
        &format!("  cacert: {}\n{identity}", s(&ca.ca_file)),
    );
    let (code, text) = run(&["-c", s(&good), "list"], &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        ["m1", "m2", "m3", "Leader"]
            .iter()
            .all(|w| text.contains(w)),
        "{text}"
    );
    let other = TestCa::new(pki, "other");
    let wrong = format!("  cacert: {}\n{identity}", s(&other.ca_file));
    let wrong_ca = tls_ctl_file(c, "wrong-ca.yml", &wrong);
    let (code, text) = run(&["-c", s(&wrong_ca), "list"], &[]);
    eprintln!("WRONG-CA: {text}");
    assert_eq!(code, 1, "{text}");
    assert!(names_an_endpoint(c, &text), "names the endpoint: {text}");
    assert!(text.contains("TLS handshake failed"), "says why: {text}");
    good
}

/// plan and apply: non-secret settings in patronus.yaml, the client certificate from
/// PATRONI_ETCD3_CERT/KEY; without it etcd refuses the connection, named, exit 1. Returns
/// the repository.
async fn gitops_over_tls(c: &TestCluster, ca: &TestCa, agent: &CertFiles) -> PathBuf {
    let settings = format!(
        "dcs:\n  etcd3:\n    hosts: \"{}\"\n    protocol: https\n    cacert: {}\n  namespace: /service\n",
        c.etcd.endpoints(),
        s(&ca.ca_file)
    );
    let cluster = "config:\n  postgresql:\n    parameters:\n      work_mem: 9MB\n";
    let dir = repo(c, &settings, cluster);
    let env = [
        ("PATRONI_ETCD3_CERT", s(&agent.cert)),
        ("PATRONI_ETCD3_KEY", s(&agent.key)),
    ];
    let (code, text) = run(&["plan", "--repo", s(&dir)], &env);
    assert_eq!(code, 2, "changes planned: {text}");
    assert!(text.contains("work_mem"), "{text}");
    let (code, text) = run(&["plan", "--repo", s(&dir)], &[]);
    eprintln!("MISSING-CERT: {text}");
    assert_eq!(code, 1, "{text}");
    assert!(names_an_endpoint(c, &text), "names the endpoint: {text}");
    assert!(text.contains("TLS handshake failed"), "says why: {text}");
    let (code, text) = run(&["apply", "--repo", s(&dir)], &env);
    assert_eq!(code, 0, "{text}");
    let config = c.key_json("config").await.expect("config key");
    assert_eq!(config["postgresql"]["parameters"]["work_mem"], "9MB");
    dir
}

/// `patronus [global] reconcile --repo <repo>` with `env`, its output in `log`.
fn reconciler(global: &[&str], repo: &Path, log: &Path, env: &[(&str, &str)]) -> Daemon {
    let f = std::fs::File::create(log).unwrap();
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(global)
            .args(["reconcile", "--repo"])
            .arg(repo)
            .envs(env.iter().copied())
            .env_remove("PATRONICTL_CONFIG_FILE")
            .env("HOME", "/nonexistent")
            .env("PATRONUS_MIN_TTL", "5")
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The record of operation `id` in the cluster's `gitops` key (Null when absent).
async fn op_state(c: &TestCluster, id: &str) -> Value {
    c.key_json("gitops").await.unwrap_or(Value::Null)["ops"][id].clone()
}

/// Writes `clusters/<scope>/ops/<id>.yaml` (a switchover to `candidate`) and commits it.
fn declare_switchover(c: &TestCluster, dir: &Path, id: &str, candidate: &str) {
    let ops = dir.join(format!("clusters/{}/ops", c.scope));
    std::fs::create_dir_all(&ops).unwrap();
    let op = format!("type: switchover\ncandidate: {candidate}\n");
    std::fs::write(ops.join(format!("{id}.yaml")), op).unwrap();
    commit(dir, &format!("switchover {id}"));
}

const REST_CREDS: [(&str, &str); 2] = [
    ("PATRONI_CTL_USERNAME", "admin"),
    ("PATRONI_CTL_PASSWORD", "rest-pw-it"),
];

/// The `reconcile` daemon on the TLS etcd (the `-c` file's `etcd3` section): a commit
/// raising work_mem reaches the `config` key and every member; a declared switchover
/// without `ctl.cacert` fails naming the agent and the certificate problem; with it (and
/// `PATRONI_CTL_USERNAME/PASSWORD`) the next one runs over HTTPS with Basic auth, once.
/// Returns the new leader's index.
async fn reconcile_over_tls(c: &TestCluster, dir: &Path, ctl: &Path, api_ca: &Path) -> usize {
    let li = c.index(&c.leader().await.expect("a leader"));
    let cand = c.nodes[(li + 1) % 3].name.clone();
    let f = dir.join(format!("clusters/{}/cluster.yaml", c.scope));
    std::fs::write(
        &f,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 12MB\n",
    )
    .unwrap();
    commit(dir, "work_mem 12MB");
    declare_switchover(c, dir, "sw1", &cand);
    let d1 = reconciler(&["-c", s(ctl)], dir, &c.dir.join("rec1.log"), &REST_CREDS);
    wait_for("work_mem 12MB on every member", T, || async {
        let config = c.key_json("config").await?;
        (config["postgresql"]["parameters"]["work_mem"] == "12MB").then_some(())?;
        for i in 0..c.nodes.len() {
            (c.query_one(i, "SHOW work_mem").await? == "12MB").then_some(())?;
        }
        Some(())
    })
    .await;
    let st = wait_for("sw1 to fail", T, || async {
        let st = op_state(c, "sw1").await;
        (st["state"] == "failed").then_some(st)
    })
    .await;
    let outcome = st["outcome"].as_str().unwrap_or_default();
    eprintln!("NO-CTL-CACERT: {outcome}");
    let agent = format!("agent {} could not be reached: ", c.nodes[li].name);
    let url = format!("https://127.0.0.1:{}/switchover", c.nodes[li].api_port);
    assert!(outcome.contains(&agent) && outcome.contains(&url), "{st}");
    assert!(outcome.contains("UnknownIssuer"), "the TLS reason: {st}");
    assert!(!outcome.contains("rest-pw-it"), "{st}");
    drop(d1);

    // The agents require Basic auth: over HTTPS, without credentials, a 401.
    let url = c.api_url(li, "/switchover");
    let body = format!(
        r#"{{"leader": "{}", "candidate": "{cand}"}}"#,
        c.nodes[li].name
    );
    let r = c.api_client().post(url).body(body).send().await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(401));

    // ctl.cacert trusts the agents' certificates: the next declared switchover runs.
    let with_ca = c.dir.join("ctl-ca.yml");
    let body = std::fs::read_to_string(ctl).unwrap();
    std::fs::write(&with_ca, format!("{body}ctl:\n  cacert: {}\n", s(api_ca))).unwrap();
    declare_switchover(c, dir, "sw2", &cand);
    let args = ["-c", s(&with_ca)];
    let d2 = reconciler(&args, dir, &c.dir.join("rec2.log"), &REST_CREDS);
    wait_for("the switchover over HTTPS", T, || async {
        (c.leader().await? == cand && op_state(c, "sw2").await["state"] == "done").then_some(())
    })
    .await;
    let log = std::fs::read_to_string(c.dir.join("rec2.log")).unwrap_or_default();
    assert!(
        !log.contains("rest-pw-it"),
        "the REST password is not logged"
    );
    drop(d2);
    assert_eq!(
        op_state(c, "sw1").await["state"],
        "failed",
        "sw1 never re-run"
    );
    c.index(&cand)
}

/// kill -9 of the leader's agent and PostgreSQL (member `li`): one of the others takes the
/// leader key and accepts writes; `patronus <list_args>` with `env` shows it as Leader.
async fn failover(c: &mut TestCluster, li: usize, list_args: &[&str], env: &[(&str, &str)]) {
    let old = c.nodes[li].name.clone();
    c.kill_agent(li);
    c.kill_postmaster(li);
    let c = &*c;
    let new = wait_for("another member to lead", T, || async {
        let leader = c.leader().await?;
        let i = c.index(&leader);
        (leader != old && c.writable(i).await == Some(true)).then_some(leader)
    })
    .await;
    let (code, text) = run(list_args, env);
    assert_eq!(code, 0, "{text}");
    let leader_line = text
        .lines()
        .find(|l| l.contains("Leader"))
        .unwrap_or_default();
    assert!(leader_line.contains(&new), "{new} leads: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_etcd_with_client_certificates_and_https_agents() {
    patronus::tls::install_provider();
    let pki = temp_dir("etcdpki");
    let ca = TestCa::new(&pki, "etcd");
    let api_ca = TestCa::new(&pki, "api");
    let (opts, agent) = tls_opts(&ca, &api_ca);
    let mut c = TestCluster::start("etcdtls", opts).await;
    c.wait_healthy(T).await;
    let good = list_over_tls(&c, &pki, &ca, &agent);
    let dir = gitops_over_tls(&c, &ca, &agent).await;
    let li = reconcile_over_tls(&c, &dir, &good, &api_ca.ca_file).await;

    // Failover over TLS with 3 members, once every member streams again.
    c.wait_healthy(T).await;
    failover(&mut c, li, &["-c", s(&good), "list"], &[]).await;
    for i in 0..c.nodes.len() {
        assert!(
            !c.log_text(i).contains("etcd-key-pw-it"),
            "the key password is not logged"
        );
    }
}

#[test]
fn a_password_in_the_repository_is_refused() {
    let dir = temp_dir("pwrepo");
    std::fs::write(
        dir.join("patronus.yaml"),
        "dcs:\n  etcd3:\n    hosts: [\"127.0.0.1:2379\"]\n    username: patronus\n    password: repo-secret-it\n",
    )
    .unwrap();
    let f = dir.join("clusters/acme/cluster.yaml");
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(
        &f,
        "config:\n  postgresql:\n    parameters:\n      password_encryption: scram-sha-256\n      work_mem: 4MB\n",
    )
    .unwrap();
    for cmd in ["validate", "plan"] {
        let args: Vec<&str> = if cmd == "validate" {
            vec![cmd, s(&dir)]
        } else {
            vec![cmd, "--repo", s(&dir)]
        };
        let (code, text) = run(&args, &[]);
        assert_eq!(code, 1, "{cmd}: {text}");
        assert!(
            text.contains("patronus.yaml: dcs.etcd3.password: "),
            "{cmd}: {text}"
        );
        assert!(
            text.contains("PATRONI_ETCD3_PASSWORD"),
            "points to the alternative: {text}"
        );
        assert!(!text.contains("repo-secret-it"), "{cmd}: {text}");
        assert!(
            !text.contains("password_encryption"),
            "not a secret: {text}"
        );
    }
}
