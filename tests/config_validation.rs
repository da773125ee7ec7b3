//! Node configuration: the node files of `tests/fixtures/` (tutorial shapes) validate,
//! invalid ones stop the agent before it touches anything, with the YAML path and the reason.

mod common;

use std::process::Command;

fn patronus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patronus"))
}

/// The project's own node files (Patroni tutorial shapes), inside the repository.
fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn validate(path: &std::path::Path) -> std::process::Output {
    patronus()
        .arg("agent")
        .arg("--validate-config")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run patronus: {e}"))
}

#[test]
fn fixture_configs_validate_unchanged() {
    let dir = fixtures();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        let out = validate(&path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}{}",
            path.display(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("configuration is valid"), "{stdout}");
        assert!(
            !stdout.contains("unknown key"),
            "{}: our own fixtures have no typos: {stdout}",
            path.display()
        );
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "legacy-etcd-v2.yml" {
            assert!(
                stdout.contains("warning: etcd"),
                "legacy etcd: section warns: {stdout}"
            );
            assert!(
                stdout.contains("bootstrap.users"),
                "bootstrap.users warns: {stdout}"
            );
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "debian12-etcd3.yml",
            "initdb-mapping-pgbackrest.yml",
            "legacy-etcd-v2.yml",
            "namespace-tags-rewind.yml"
        ]
    );
}

#[test]
fn a_typo_in_a_fixture_is_a_warning_naming_its_path() {
    let dir = common::temp_dir("typo");
    let text = std::fs::read_to_string(fixtures().join("debian12-etcd3.yml")).unwrap();
    let cfg = dir.join("typo.yml");
    std::fs::write(
        &cfg,
        text.replace("  data_dir:", "  data_dri: /x\n  data_dir:"),
    )
    .unwrap();
    let out = validate(&cfg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("postgresql.data_dri: unknown key"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_config_exits_before_touching_anything() {
    let dir = common::temp_dir("badcfg");
    let data = dir.join("data");
    let cfg = dir.join("bad.yml");
    std::fs::write(
        &cfg,
        format!(
            "scope: s\nname: n1\nrestapi:\n  listen: 127.0.0.1:notaport\netcd3:\n  hosts: 127.0.0.1:1\npostgresql:\n  listen: 127.0.0.1:5999\n  connect_address: 127.0.0.1:5999\n  data_dir: {}\n  pg_ctl_timeout: soon\n  lisen: typo\n  authentication:\n    superuser:\n      username: postgres\n    replication:\n      username: rep\n",
            data.display()
        ),
    )
    .unwrap();
    let out = patronus()
        .arg("agent")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("postgresql.pg_ctl_timeout"),
        "names the path: {stderr}"
    );
    assert!(
        stderr.contains("restapi.listen"),
        "reports every problem: {stderr}"
    );
    assert!(!data.exists(), "nothing was created");
    let out = patronus()
        .arg("agent")
        .arg("--validate-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());

    std::fs::write(&cfg, "scope: [unclosed\n").unwrap();
    let out = patronus()
        .arg("agent")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("bad.yml"), "names the file: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
