use super::*;

#[test]
fn a_cluster_dcs_section_is_read() {
    let state = load_one_cluster(
        "dcs:\n  etcd3:\n    hosts: [\"eu1:2379\"]\n  namespace: /eu\nconfig:\n  ttl: 30\n",
    )
    .unwrap();
    let dcs = state.clusters[0].dcs.as_ref().unwrap();
    assert_eq!(dcs.pointer("/etcd3/hosts/0").unwrap(), "eu1:2379");
    assert_eq!(dcs.pointer("/namespace").unwrap(), "/eu");
}

#[test]
fn a_bad_cluster_dcs_section_is_named_and_refused() {
    let p =
        load_one_cluster("dcs:\n  etcd3:\n    hosts: []\n    port: 1\nconfig: {}\n").unwrap_err();
    assert!(
        p.iter()
            .any(|x| x.file == "clusters/acme/cluster.yaml" && x.path.starts_with("dcs.etcd3")),
        "{p:?}"
    );
    let p = load_one_cluster("dcs:\n  etcd3:\n    password: pw\nconfig: {}\n").unwrap_err();
    assert!(
        p.iter()
            .any(|x| x.path == "dcs.etcd3.password" && x.reason.contains("secret")),
        "{p:?}"
    );
}
