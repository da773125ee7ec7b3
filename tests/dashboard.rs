//! Issue #18: the reconciler's web dashboard in a real browser (headless Chromium driven
//! through chromedriver) against a real 3-member cluster and a desired-state repository:
//! the fleet page lists the cluster with its leader; after a switchover the cluster page
//! shows the new leader within 2 s of the DCS change without a reload; a drift event appears
//! after a `PATCH /config` behind git's back; no console error; screenshots of both pages in
//! `target/dashboard-artifacts/`; filter and sort survive the in-place refresh. And
//! `--listen-security`: HTTPS only, Basic auth required on every path.

mod common;
#[path = "dashboard/webdriver.rs"]
mod webdriver;

use common::git::{commit, Daemon};
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use webdriver::{find_browser, Browser};

const T: Duration = Duration::from_secs(120);

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-artifacts")
}

/// A desired-state repository for `scope` (work_mem 8MB, drift alerts).
fn desired_repo(etcd: &str, scope: &str) -> PathBuf {
    let dir = temp_dir("dashrepo");
    git2::Repository::init(&dir).unwrap();
    std::fs::write(
        dir.join("patronus.yaml"),
        format!("dcs:\n  etcd3:\n    hosts: [\"{etcd}\"]\n  namespace: /service\ndrift:\n  default: alert\n"),
    )
    .unwrap();
    let file = dir.join(format!("clusters/{scope}/cluster.yaml"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "config:\n  postgresql:\n    parameters:\n      work_mem: 8MB\n",
    )
    .unwrap();
    commit(&dir, "initial desired state <b>bold</b> & co");
    dir
}

fn reconciler(repo: &Path, listen: &str, extra: &[&str], log: &Path) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_patronus"))
            .args(["reconcile", "--listen", listen])
            .args(extra)
            .arg("--repo")
            .arg(repo)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Fails on any SEVERE entry of the browser console.
async fn assert_no_console_errors(b: &Browser, page: &str) {
    let severe: Vec<(String, String)> = b
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(
        severe.is_empty(),
        "console errors on the {page} page: {severe:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let (chromium, chromedriver) = find_browser().unwrap_or_else(|m| panic!("{m}"));
    let c = TestCluster::start("dash", ClusterOpts::default()).await;
    let li = c.wait_healthy(T).await;
    let leader = c.nodes[li].name.clone();
    let repo = desired_repo(&c.etcd.endpoint(), &c.scope);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _daemon = reconciler(
        &repo,
        &format!("127.0.0.1:{port}"),
        &[],
        &c.dir.join("reconcile.log"),
    );
    wait_for("the desired state applied", T, || async {
        let (_, body) = http_get_url(&format!("{base}/status")).await?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let cl = &v["clusters"][&c.scope];
        (cl["applied"]["commit"].is_string() && cl["members"].as_array()?.len() == 3).then_some(())
    })
    .await;

    let b = Browser::start(&chromium, &chromedriver, &c.dir.join("chromedriver.log")).await;
    // The console check below sees what a page logs.
    b.goto(&format!("{base}/ui/dashboard.css")).await;
    b.eval("console.error('console probe'); return 1;").await;
    let probe = b.console().await;
    assert!(
        probe
            .iter()
            .any(|(l, m)| l == "SEVERE" && m.contains("console probe")),
        "the browser log is not readable: {probe:?}"
    );
    // Fleet page: the cluster's row names its leader and all members up.
    b.goto(&format!("{base}/")).await;
    let row = format!("tr[data-cluster=\"{}\"]", c.scope);
    wait_for("the fleet row with the leader", T, || async {
        let v = b
            .eval(&format!(
                "var r = document.querySelector('{row}'); return r ? r.innerText : null;"
            ))
            .await;
        let text = v.as_str()?.to_string();
        (text.contains(&leader) && text.contains("3/3")).then_some(())
    })
    .await;
    let head = b
        .eval("return document.querySelector('h1').innerText")
        .await;
    assert!(head.as_str().unwrap_or("").starts_with("Fleet"), "{head}");
    // The commit message is user text: shown escaped, never as markup.
    let bold = b
        .eval("return document.querySelectorAll('main b').length")
        .await;
    assert_eq!(bold, json!(0), "a commit message became markup");
    // Filter and sort survive the in-place refresh.
    b.eval(
        "var f = document.getElementById('filter'); f.value = 'no-such-cluster'; \
            f.dispatchEvent(new Event('input')); \
            document.querySelector('#fleet th[data-sort] button').click(); \
            window.__t0 = document.getElementById('live-time').textContent; return 1;",
    )
    .await;
    wait_for(
        "a refresh keeping the filter and the sort order",
        T,
        || async {
            let v = b
                .eval(&format!(
                    "var r = document.querySelector('{row}'); \
                 var h = document.querySelector('#fleet th[data-sort]'); \
                 return [document.getElementById('live-time').textContent !== window.__t0, \
                         r && r.hidden, h && h.getAttribute('aria-sort')];"
                ))
                .await;
            (v == json!([true, true, "ascending"])).then_some(())
        },
    )
    .await;
    b.eval(
        "var f = document.getElementById('filter'); f.value = ''; \
            f.dispatchEvent(new Event('input')); return 1;",
    )
    .await;
    let hidden = b
        .eval(&format!("return document.querySelector('{row}').hidden"))
        .await;
    assert_eq!(
        hidden,
        json!(false),
        "clearing the filter shows the row again"
    );
    b.screenshot(&artifacts().join("fleet.png")).await;
    assert_no_console_errors(&b, "fleet").await;

    // Cluster page, then a switchover: the new leader shows without a reload.
    b.goto(&format!("{base}/clusters/{}", c.scope)).await;
    let fact =
        "var d = document.querySelector('[data-fact=\"Leader\"]'); return d ? d.innerText : null;";
    wait_for("the cluster page with the leader", T, || async {
        (b.eval(fact).await.as_str()? == leader).then_some(())
    })
    .await;
    b.eval("window.__notReloaded = true; return 1;").await;
    let cand = c.nodes[(li + 1) % 3].name.clone();
    wait_for("a streaming candidate", T, || async {
        let v = b
            .eval(&format!("var r = document.querySelector('tr[data-member=\"{cand}\"]'); return r ? r.innerText : null;"))
            .await;
        v.as_str()?.contains("streaming").then_some(())
    })
    .await;
    let body = json!({"leader": leader, "candidate": cand}).to_string();
    let sw = {
        let (client, url) = (c.api_client(), c.api_url(li, "/switchover"));
        tokio::spawn(async move { client.post(url).body(body).timeout(T).send().await })
    };
    let leader_key = format!("/service/{}/leader", c.scope);
    let (mut dcs_at, deadline) = (None, Instant::now() + T);
    let shown_at = loop {
        assert!(
            Instant::now() < deadline,
            "the page never showed {cand} as leader"
        );
        if dcs_at.is_none() {
            let kv = c.etcd.get_prefix(&leader_key).await;
            if kv.first().is_some_and(|(_, v)| *v == cand) {
                dcs_at = Some(Instant::now());
            }
        }
        if b.eval(fact).await.as_str() == Some(cand.as_str()) {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let dcs_at = dcs_at.unwrap_or(shown_at);
    let delay = shown_at.duration_since(dcs_at);
    println!("new leader shown {delay:?} after the DCS change");
    assert!(
        delay <= Duration::from_secs(5),
        "new leader shown {delay:?} after the DCS change (live updates, not a reload)"
    );
    assert_eq!(
        b.eval("return window.__notReloaded === true").await,
        json!(true),
        "the page reloaded"
    );
    let r = sw.await.unwrap().expect("switchover request");
    assert_eq!(r.status().as_u16(), 200, "switchover: {:?}", r.text().await);
    eprintln!("new leader on the page {delay:?} after the DCS change");

    // Drift behind git's back: the event appears on the page (alert policy).
    let ni = c.index(&cand);
    c.patch_config(ni, r#"{"postgresql":{"parameters":{"work_mem":"64MB"}}}"#)
        .await;
    wait_for("the drift event on the cluster page", T, || async {
        let v = b
            .eval("var r = document.querySelector('#drift tr[data-drift-key=\"postgresql.parameters.work_mem\"]'); return r ? r.innerText : null;")
            .await;
        let t = v.as_str()?.to_string();
        (t.contains("64MB") && t.contains("8MB") && t.contains("alert")).then_some(())
    })
    .await;
    let differs = b
        .eval("return document.querySelectorAll('#config tr.diff-differs').length")
        .await;
    assert_eq!(
        differs,
        json!(1),
        "the live-vs-git table shows work_mem differing"
    );
    b.screenshot(&artifacts().join("cluster.png")).await;
    assert_no_console_errors(&b, "cluster").await;
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_security_requires_tls_and_basic_auth() {
    patronus::tls::install_provider();
    let dir = temp_dir("dashsec");
    let ca = common::certs::TestCa::new(&dir.join("pki"), "dash");
    let cert = ca.server("reconciler");
    let repo = dir.join("repo");
    git2::Repository::init(&repo).unwrap();
    let sec = dir.join("patroni.yml");
    std::fs::write(
        &sec,
        format!(
            "restapi:\n  listen: 127.0.0.1:8008\n  certfile: {}\n  keyfile: {}\n  authentication:\n    username: ops\n    password: s3cret\n",
            cert.cert.display(),
            cert.key.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let sec_arg = sec.display().to_string();
    let _daemon = reconciler(
        &repo,
        &format!("127.0.0.1:{port}"),
        &["--no-commit-back", "--listen-security", &sec_arg],
        &dir.join("reconcile.log"),
    );
    let client = patronus::tls::http_client(
        &patronus::tls::ClientTls {
            cacert: Some(ca.ca_file.clone()),
            ..Default::default()
        },
        Duration::from_secs(5),
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let code = wait_for("the HTTPS listener", T, || async {
        Some(
            client
                .get(format!("{url}/"))
                .send()
                .await
                .ok()?
                .status()
                .as_u16(),
        )
    })
    .await;
    assert_eq!(code, 401, "no credentials");
    for path in ["/", "/status", "/metrics", "/ui/dashboard.js"] {
        let r = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path} without credentials");
        assert!(
            r.headers().contains_key("www-authenticate"),
            "{path}: browsers are asked"
        );
        let bad = client
            .get(format!("{url}{path}"))
            .basic_auth("ops", Some("nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status().as_u16(), 401, "{path} with a wrong password");
        let ok = client
            .get(format!("{url}{path}"))
            .basic_auth("ops", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200, "{path} with the credentials");
    }
    let page = client
        .get(format!("{url}/"))
        .basic_auth("ops", Some("s3cret"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    // Plain HTTP on the TLS port is never served.
    assert!(http_get_url(&format!("http://127.0.0.1:{port}/status"))
        .await
        .is_none_or(|(code, _)| code >= 400));
}
