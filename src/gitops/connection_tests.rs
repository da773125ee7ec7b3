use super::*;
use serde_json::json;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn repo(v: Value) -> RepoSettings {
    RepoSettings { raw: v }
}

fn source(file: &str, vars: &[(&str, &str)]) -> (tempfile::TempDir, ConnectionSource) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctl.yml");
    std::fs::write(&path, file).unwrap();
    let s = ConnectionSource::load(Some(&path), None, &env(vars)).unwrap();
    (dir, s)
}

#[test]
fn repo_settings_alone() {
    let s = ConnectionSource::load(None, None, &env(&[])).unwrap();
    let r = repo(json!({"dcs": {"namespace": "/db", "etcd3": {
        "hosts": ["e1:2379", "e2:2379"], "protocol": "https", "cacert": "/ca.pem"}}}));
    let (etcd, ns) = s.etcd(&r).unwrap();
    assert_eq!(etcd.urls(), vec!["https://e1:2379", "https://e2:2379"]);
    assert_eq!(etcd.tls.cacert, Some("/ca.pem".into()));
    assert_eq!(ns, "/db");
    assert!(etcd.password.is_none());
}

#[test]
fn file_then_environment_win_over_the_repository() {
    let (_d, s) = source(
        "etcd3:\n  hosts: f1:2379\n  username: patronus\n  password: from-file\n  cert: /c.pem\n",
        &[("PATRONI_ETCD3_PASSWORD", "from-env")],
    );
    let r = repo(json!({"dcs": {"namespace": "/db", "etcd3": {
        "hosts": "r1:2379", "protocol": "https", "cacert": "/ca.pem"}}}));
    let (etcd, ns) = s.etcd(&r).unwrap();
    assert_eq!(
        etcd.urls(),
        vec!["https://f1:2379"],
        "file hosts, repo protocol"
    );
    assert_eq!(etcd.username.as_deref(), Some("patronus"));
    assert_eq!(etcd.password.as_deref(), Some("from-env"));
    assert_eq!(etcd.tls.cacert, Some("/ca.pem".into()));
    assert_eq!(etcd.tls.cert, Some("/c.pem".into()));
    assert_eq!(ns, "/db", "the file sets no namespace");
    let (_d, env_hosts) = source("namespace: /other\n", &[("PATRONI_ETCD3_HOSTS", "v:1")]);
    let (etcd, ns) = env_hosts.etcd(&r).unwrap();
    assert_eq!(etcd.hosts, vec!["v:1"]);
    assert_eq!(ns, "/other");
    let (etcd, _) = env_hosts
        .with_hosts(Some(vec!["flag:2".into()]))
        .etcd(&r)
        .unwrap();
    assert_eq!(etcd.hosts, vec!["flag:2"], "--etcd wins");
}

#[test]
fn dcs_url_sets_hosts_and_namespace() {
    let s = ConnectionSource::load(None, Some("etcd3://d:3/ns"), &env(&[])).unwrap();
    let (etcd, ns) = s.etcd(&RepoSettings::default()).unwrap();
    assert_eq!((etcd.hosts, ns.as_str()), (vec!["d:3".to_string()], "/ns"));
    let bad = ConnectionSource::load(None, Some("consul://x"), &env(&[])).unwrap();
    assert!(bad.etcd(&RepoSettings::default()).is_err());
}

#[test]
fn agents_use_ctl_then_restapi_as_patronictl() {
    let (_d, s) = source(
        "restapi:\n  authentication: {username: api, password: apipw}\n  cafile: /rest-ca.pem\nctl:\n  certfile: /ctl.pem\n",
        &[],
    );
    let a = s.agents();
    assert_eq!(a.auth, Some(("api".into(), "apipw".into())));
    assert_eq!(a.tls.cacert, Some("/rest-ca.pem".into()));
    assert_eq!(a.tls.certfile, Some("/ctl.pem".into()));
    assert!(!a.tls.insecure);
    let (_d, s) = source(
        "restapi:\n  authentication: {username: api, password: apipw}\n",
        &[
            ("PATRONI_CTL_USERNAME", "ops"),
            ("PATRONI_CTL_PASSWORD", "opspw"),
            ("PATRONI_CTL_INSECURE", "true"),
        ],
    );
    let a = s.agents();
    assert_eq!(a.auth, Some(("ops".into(), "opspw".into())));
    assert!(a.tls.insecure);
    assert!(!format!("{a:?}").contains("opspw"));
    assert!(!format!("{s:?}").contains("apipw"));
}

#[test]
fn an_unreadable_file_is_named() {
    let e = ConnectionSource::load(Some(Path::new("/nonexistent/ctl.yml")), None, &env(&[]))
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ctl.yml"), "{e}");
}

#[test]
fn a_cluster_dcs_section_wins_for_its_endpoints_and_namespace() {
    let (_d, s) = source(
        "etcd3:\n  hosts: f1:2379\n  username: patronus\n  password: from-file\n",
        &[],
    );
    let s = s.with_hosts(Some(vec!["cli:2379".into()]));
    let r = repo(json!({"dcs": {"namespace": "/db", "etcd3": {
        "hosts": ["shared:2379"], "protocol": "https", "cacert": "/ca.pem"}}}));
    let own = json!({"namespace": "/eu", "etcd3": {"hosts": "eu1:2379,eu2:2379"}});
    let (etcd, ns) = s.etcd_for(&r, Some(&own)).unwrap();
    assert_eq!(etcd.urls(), vec!["https://eu1:2379", "https://eu2:2379"]);
    assert_eq!(ns, "/eu");
    assert_eq!(
        etcd.tls.cacert,
        Some("/ca.pem".into()),
        "the repository's keys stay"
    );
    assert_eq!(
        etcd.password.as_deref(),
        Some("from-file"),
        "credentials from -c"
    );
    // A cluster that names no endpoints follows the shared ones (here --etcd).
    let (etcd, ns) = s.etcd_for(&r, Some(&json!({"namespace": "/x"}))).unwrap();
    assert_eq!(etcd.urls(), vec!["https://cli:2379"]);
    assert_eq!(ns, "/x");
    let (etcd, ns) = s.etcd_for(&r, None).unwrap();
    assert_eq!(etcd.urls(), vec!["https://cli:2379"]);
    assert_eq!(ns, "/db");
}
