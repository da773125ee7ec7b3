//! The HA decision core stays pure: no I/O imports in `src/ha/`, no clock read, and no
//! dependency on the crate's I/O layers (agent, REST API, PostgreSQL control, etcd, CLI,
//! GitOps, TLS, fence): the core may use only `config`, `dcs` (model types) and itself.

#[test]
fn ha_core_has_no_io_imports() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/ha");
    let forbidden = [
        "tokio",
        "std::fs",
        "std::net",
        "std::process",
        "etcd_client",
        "tokio_postgres",
        "reqwest",
        "axum",
        "std::time::SystemTime",
        "std::thread",
        "std::env",
        "hyper",
        "Instant::now",
        "Utc::now",
        "Local::now",
        "crate::agent",
        "crate::api",
        "crate::postgres",
        "crate::cli",
        "crate::gitops",
        "crate::tls",
        "crate::fence",
        "crate::dcs::etcd",
    ];
    let mut checked = 0;
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("src/ha exists") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        checked += 1;
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            for f in forbidden {
                assert!(
                    !(l.contains(&format!("use {f}"))
                        || l.contains(&format!("{f}::"))
                        || (f.ends_with("::now") && l.contains(f))),
                    "{}:{}: I/O import `{f}` in the pure HA core: {l}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(
        checked >= 10,
        "expected the HA core files incl. sim/ and tests/, found {checked}"
    );
}
