//! The HA decision core stays pure, and the compiler enforces it: `decide`, its rules and the
//! model they read live in their own crate, `crates/patronus-core`, which cannot use the main
//! crate's I/O layers (agent, REST API, PostgreSQL control, etcd, CLI, GitOps, TLS, fence: a
//! crate cannot depend on the crate that depends on it) and has no runtime, network, database,
//! HTTP, git or process dependency, so such code does not compile there.
//!
//! These tests keep that boundary from being widened in silence: the core's manifest may name
//! only the allow-listed dependencies below, and the parts of `std` the compiler cannot refuse
//! (files, sockets, processes, threads, environment, wall clock) are checked in its sources.

use std::path::{Path, PathBuf};

const CORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/patronus-core");

/// The dependencies the core may have, and why none of them can do I/O.
const ALLOWED: &[(&str, &str)] = &[
    ("serde", "derives for the DCS JSON model"),
    (
        "serde_json",
        "the DCS values and dynamic configuration as JSON trees",
    ),
    ("thiserror", "error types"),
    (
        "chrono",
        "calendar parsing of a scheduled switchover time, without its \"clock\" feature",
    ),
];

/// Names of the normal and build dependencies declared in a Cargo manifest (every
/// `[dependencies]`, `[build-dependencies]`, `[target.….dependencies]` table and
/// `[dependencies.NAME]` form); dev-dependencies only build tests and are not listed.
fn dependency_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_table = false;
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim();
            let dep_table = |h: &str| {
                !h.contains("dev-dependencies")
                    && (h == "dependencies"
                        || h == "build-dependencies"
                        || h.ends_with(".dependencies")
                        || h.ends_with(".build-dependencies"))
            };
            in_table = dep_table(header);
            if let Some((table, name)) = header.rsplit_once('.') {
                if dep_table(table) {
                    names.push(name.trim().to_string());
                }
            }
            continue;
        }
        if in_table && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.push(name.trim_matches('"').to_string());
        }
    }
    names
}

#[test]
fn core_depends_only_on_the_allow_list() {
    let path = Path::new(CORE).join("Cargo.toml");
    let manifest = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the pure HA core crate)", path.display()));
    let names = dependency_names(&manifest);
    assert!(names.contains(&"serde_json".to_string()), "{names:?}");
    for name in &names {
        assert!(
            ALLOWED.iter().any(|(a, _)| a == name),
            "{}: dependency `{name}` is outside the pure HA core's allow-list {:?}: the core \
             must not be able to do I/O; put the code that needs `{name}` in the main crate and \
             pass its result to the core as data (docs/architecture.md, the crate boundary)",
            path.display(),
            ALLOWED.iter().map(|(a, _)| *a).collect::<Vec<_>>()
        );
    }
    let chrono = manifest.lines().find(|l| l.starts_with("chrono"));
    assert!(
        chrono.is_none_or(|l| l.contains("default-features = false") && !l.contains("clock")),
        "{}: chrono in the core must not read the clock (default-features = false, no \"clock\")",
        path.display()
    );
}

#[test]
fn the_dependency_check_sees_every_table_form() {
    let manifest = r#"
[package]
name = "x"
[dependencies]
serde = "1"
tokio = { version = "1" }
serde_json.workspace = true
[dependencies.nix]
version = "0.29"
[target.'cfg(unix)'.dependencies]
axum = "0.8"
[build-dependencies]
git2 = "0.21"
[dev-dependencies]
proptest = "1"
"#;
    assert_eq!(
        dependency_names(manifest),
        ["serde", "tokio", "serde_json", "nix", "axum", "git2"]
    );
}

/// The core's source files, without test-only files (tests may read the monotonic clock).
fn core_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() && name != "tests" {
            core_sources(&path, out);
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") && name != "prop_support.rs"
        {
            out.push(path);
        }
    }
}

#[test]
fn core_sources_use_no_std_io_and_no_wall_clock() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::thread",
        "std::env",
        "std::io",
        "SystemTime",
        "Instant::now",
        "Utc::now",
        "Local::now",
    ];
    let mut files = Vec::new();
    core_sources(&Path::new(CORE).join("src"), &mut files);
    assert!(
        files.len() >= 30,
        "expected the core's files, found {files:?}"
    );
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable source");
        // An inline `mod tests` closes a file in this code base; test code may read a clock.
        let code = text.lines().take_while(|l| l.trim() != "mod tests {");
        for (n, line) in code.enumerate() {
            let l = line.trim();
            if l.starts_with("//") {
                continue;
            }
            // `use std::{fs, ...}` names the module without `std::` in front of it.
            let grouped: Vec<&str> = l
                .split_once("std::{")
                .map(|(_, rest)| rest.split('}').next().unwrap_or_default())
                .map(|items| items.split(',').map(str::trim).collect())
                .unwrap_or_default();
            let in_group = |f: &str| {
                f.strip_prefix("std::").is_some_and(|m| {
                    grouped
                        .iter()
                        .any(|i| *i == m || i.starts_with(&format!("{m}::")))
                })
            };
            for f in forbidden {
                assert!(
                    !l.contains(f) && !in_group(f),
                    "{}:{}: `{f}` in the pure HA core (I/O or a clock read; pass the value in \
                     the Observation instead): {l}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}
