//! The core stays pure: its non-test code names no runtime, network, file system, clock or
//! process API and no I/O layer of this crate. A new dependency of that kind fails here
//! with the file and the line.

use std::path::{Path, PathBuf};

/// What the decision core must not use (matched as written in the source).
const FORBIDDEN: &[&str] = &[
    "tokio",
    "reqwest",
    "etcd_client",
    "axum",
    "hyper",
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "std::env",
    "SystemTime",
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
    "crate::dcs::memory",
];

/// Test-only files and folders of `src/ha` (compiled under `cfg(test)` only).
fn test_only(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with("_tests.rs")
        || name == "sim.rs"
        || path
            .components()
            .any(|c| matches!(c.as_os_str().to_str(), Some("tests" | "sim")))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/ha") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines before the file's unit-test module (`#[cfg(test)]` then `mod tests`).
fn non_test_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].starts_with("mod tests {"))
        .unwrap_or(lines.len());
    lines.into_iter().take(end).enumerate()
}

#[test]
fn the_core_names_no_io_runtime_or_io_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ha");
    let mut files = vec![];
    sources(&root, &mut files);
    let mut found = vec![];
    for file in files
        .iter()
        .filter(|f| !test_only(f.strip_prefix(&root).unwrap_or(f)))
    {
        let text = std::fs::read_to_string(file).expect("read source");
        for (n, line) in non_test_lines(&text) {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN.iter().filter(|w| code.contains(*w)) {
                found.push(format!("{}:{}: {word}", file.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "impure core:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_forbidden_use() {
    let text = "use std::fs;\nfn f() {}\n#[cfg(test)]\nmod tests { use tokio; }\n";
    let hits: Vec<usize> = non_test_lines(text)
        .filter(|(_, l)| FORBIDDEN.iter().any(|w| l.contains(w)))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(hits, [0]);
    assert!(test_only(Path::new("sim/cycle.rs")));
    assert!(test_only(Path::new("quorum_tests.rs")));
    assert!(!test_only(Path::new("decide.rs")));
}
