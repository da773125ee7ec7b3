use super::one_cluster_problems as problems;

#[test]
fn quorum_commit_keys_are_accepted() {
    let p = problems(
        "config:\n  synchronous_mode: quorum\n  synchronous_node_count: 2\n  \
         synchronous_mode_strict: true\n  maximum_lag_on_syncnode: 16777216\n",
    );
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn bad_sync_values_are_named() {
    let p = problems("config:\n  synchronous_mode: sometimes\n  synchronous_node_count: 0\n");
    let paths: Vec<&str> = p.iter().map(|x| x.path.as_str()).collect();
    assert!(
        paths.contains(&"config.synchronous_mode"),
        "{paths:?} {p:?}"
    );
    assert!(
        paths.contains(&"config.synchronous_node_count"),
        "{paths:?} {p:?}"
    );
}
