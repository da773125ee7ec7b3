//! Node configuration: tutorial configs validate, invalid ones stop the agent before it
//! touches anything, with the YAML path and the reason.

mod common;

use std::process::Command;

fn patronus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patronus"))
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/tutorial-configs")
}

#[test]
fn tutorial_configs_validate_unchanged() {
    let dir = fixtures();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (shared/ must sit beside the repo)", dir.display()))
    {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        seen += 1;
        let out = patronus()
            .arg("agent")
            .arg("--validate-config")
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}{}",
            path.display(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("configuration is valid"), "{stdout}");
        if path.file_name().unwrap() == "poc-pg1-v2.yml" {
            assert!(
                stdout.contains("warning: etcd"),
                "legacy etcd: section warns: {stdout}"
            );
            assert!(
                stdout.contains("bootstrap.users"),
                "bootstrap.users warns: {stdout}"
            );
        }
    }
    assert_eq!(seen, 4, "expected the four tutorial configs");
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
