use super::*;

fn load(
    tag: &str,
    cluster_yaml: &str,
) -> Result<crate::gitops::desired::DesiredState, Vec<RepoProblem>> {
    let root = std::env::temp_dir().join(format!(
        "patronus-validate-dcs-{}-{tag}",
        std::process::id()
    ));
    let dir = root.join("clusters/acme");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cluster.yaml"), cluster_yaml).unwrap();
    let out = load_and_validate(&root);
    let _ = std::fs::remove_dir_all(&root);
    out
}

#[test]
fn a_cluster_dcs_section_is_read() {
    let state = load(
        "ok",
        "dcs:\n  etcd3:\n    hosts: [\"eu1:2379\"]\n  namespace: /eu\nconfig:\n  ttl: 30\n",
    )
    .unwrap();
    let dcs = state.clusters[0].dcs.as_ref().unwrap();
    assert_eq!(dcs.pointer("/etcd3/hosts/0").unwrap(), "eu1:2379");
    assert_eq!(dcs.pointer("/namespace").unwrap(), "/eu");
}

#[test]
fn a_bad_cluster_dcs_section_is_named_and_refused() {
    let p = load(
        "bad",
        "dcs:\n  etcd3:\n    hosts: []\n    port: 1\nconfig: {}\n",
    )
    .unwrap_err();
    assert!(
        p.iter()
            .any(|x| x.file == "clusters/acme/cluster.yaml" && x.path.starts_with("dcs.etcd3")),
        "{p:?}"
    );
    let p = load("secret", "dcs:\n  etcd3:\n    password: pw\nconfig: {}\n").unwrap_err();
    assert!(
        p.iter()
            .any(|x| x.path == "dcs.etcd3.password" && x.reason.contains("secret")),
        "{p:?}"
    );
}
