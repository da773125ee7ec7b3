//! Issue #14 item 6: the agent's PostgreSQL connections honour the libpq TLS keys of
//! `postgresql.authentication`. PostgreSQL runs with `ssl = on` (server certificate from a
//! test CA) and a pg_hba that rejects every TCP connection without TLS and asks the
//! superuser and the replication role for a client certificate (`clientcert=verify-full`).
//! With `sslmode: verify-full`, `sslrootcert`, `sslcert`, `sslkey` on the roles, a 2-member
//! cluster bootstraps, the replica is cloned (pg_basebackup) and streams over TLS
//! (`pg_stat_ssl` of the walsender), the agent's own queries are over TLS too, and after a
//! switchover the old primary streams from the new one over TLS. A missing CA file stops the
//! agent at start with an error naming the key and the file.

mod common;

use common::certs::{CertFiles, TestCa};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// The libpq TLS keys of one role, as YAML lines under its entry.
fn role_tls(ca: &TestCa, client: &CertFiles) -> String {
    format!(
        "      sslmode: verify-full\n      sslrootcert: {}\n      sslcert: {}\n      sslkey: {}\n",
        ca.ca_file.display(),
        client.cert.display(),
        client.key.display()
    )
}

/// Rewrites a harness config: PostgreSQL with TLS and a TLS-only pg_hba, roles with TLS keys.
fn tls_config(
    yaml: &str,
    ca: &TestCa,
    server: &CertFiles,
    su: &CertFiles,
    rep: &CertFiles,
) -> String {
    let ssl_params = format!(
        "  parameters:\n    ssl: 'on'\n    ssl_cert_file: {}\n    ssl_key_file: {}\n    ssl_ca_file: {}\n",
        server.cert.display(),
        server.key.display(),
        ca.ca_file.display()
    );
    let hba =
        "  pg_hba:\n    - local all all trust\n    - hostnossl all all 0.0.0.0/0 reject\n    \
- hostnossl replication all 0.0.0.0/0 reject\n    \
- hostssl replication replicator 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n    \
- hostssl all postgres 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n    \
- hostssl all all 127.0.0.1/32 scram-sha-256\n";
    let mut out = yaml.replacen("\n  parameters:\n", &format!("\n{hba}{ssl_params}"), 1);
    for (line, client) in [
        ("      password: supersecret\n", su),
        ("      password: replpass\n", rep),
        ("      password: rewindpass\n", su),
    ] {
        out = out.replacen(line, &format!("{line}{}", role_tls(ca, client)), 1);
    }
    assert!(out.contains("ssl: 'on'") && out.matches("sslmode: verify-full").count() == 3);
    out
}

/// A superuser session over TLS (verify-full, client certificate), the way the agent makes it.
async fn tls_sql(
    c: &TestCluster,
    i: usize,
    ca: &TestCa,
    su: &CertFiles,
) -> Option<tokio_postgres::Client> {
    let ssl = patronus::config::PgSsl {
        sslmode: Some(patronus::config::SslMode::VerifyFull),
        sslrootcert: Some(ca.ca_file.clone()),
        sslcert: Some(su.cert.clone()),
        sslkey: Some(su.key.clone()),
        ..Default::default()
    };
    let patronus::postgres::ssl::PgConnector::Tls(tls) =
        patronus::postgres::ssl::connector(&ssl).expect("test TLS settings")
    else {
        panic!("verify-full gives a TLS connector");
    };
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(c.nodes[i].pg_port)
        .user("postgres")
        .password(SUPERPASS)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(3));
    patronus::postgres::ssl::configure(&mut cfg, &ssl);
    let (client, conn) = cfg.connect(tls).await.ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_over_tls_only_pg_hba() {
    patronus::tls::install_provider();
    let mut c = TestCluster::prepare(
        "pgssl",
        ClusterOpts {
            members: 2,
            ..Default::default()
        },
    )
    .await;
    let ca = TestCa::new(&c.dir.join("ca"), "pg");
    let server = ca.server("pg-server");
    let su = ca.client("postgres");
    let rep = ca.client("replicator");
    for n in &c.nodes {
        let yaml = std::fs::read_to_string(&n.config).unwrap();
        std::fs::write(&n.config, tls_config(&yaml, &ca, &server, &su, &rep)).unwrap();
    }
    for i in 0..2 {
        c.start_agent(i);
    }
    let li = c.wait_healthy(T).await;
    let ri = 1 - li;

    // Plain TCP is refused by the server: the agents' connections are TLS.
    assert!(
        c.sql(li).await.is_none(),
        "pg_hba refuses connections without TLS"
    );

    // The replica was cloned and streams over TLS (client certificate, verify-full).
    let s = tls_sql(&c, li, &ca, &su)
        .await
        .expect("TLS superuser session");
    let q = "SELECT r.application_name, s.ssl, s.client_dn FROM pg_stat_replication r \
             JOIN pg_stat_ssl s ON s.pid = r.pid";
    let rows = wait_for("the replica's walsender", T, || async {
        let rows = s.query(q, &[]).await.ok()?;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    let (name, ssl, dn): (String, bool, Option<String>) =
        (rows[0].get(0), rows[0].get(1), rows[0].get(2));
    assert_eq!(name, c.nodes[ri].name);
    assert!(ssl, "the walsender's connection is TLS");
    assert_eq!(
        dn.as_deref(),
        Some("/CN=replicator"),
        "with the client certificate"
    );

    // The agent's own sessions (application_name Patroni) are TLS with its certificate.
    for i in 0..2 {
        let s = tls_sql(&c, i, &ca, &su)
            .await
            .expect("TLS superuser session");
        let q = "SELECT bool_and(s.ssl), count(*) FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.application_name = 'Patroni'";
        let (all_ssl, n): (Option<bool>, i64) = wait_for("the agent's session", T, || async {
            let row = s.query_one(q, &[]).await.ok()?;
            let n: i64 = row.get(1);
            (n > 0).then(|| (row.get(0), n))
        })
        .await;
        assert_eq!(
            all_ssl,
            Some(true),
            "member {i}: {n} agent session(s), all TLS"
        );
    }
    let (_, body) = c.get(ri, "/patroni").await.expect("replica /patroni");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["xlog"]["replayed_location"].as_u64().is_some(),
        "the agent reads the replica's WAL position over TLS: {body}"
    );

    // A switchover: the old primary follows the new one, again over TLS.
    let body = serde_json::json!({"leader": c.nodes[li].name, "candidate": c.nodes[ri].name});
    let (code, text) = c
        .send(li, reqwest::Method::POST, "/switchover", &body.to_string())
        .await;
    assert_eq!(code, 200, "{text}");
    let li2 = c.wait_healthy(T).await;
    assert_eq!(li2, ri, "the candidate leads");
    let s = tls_sql(&c, li2, &ca, &su)
        .await
        .expect("TLS session on the new primary");
    let q = "SELECT r.application_name, s.ssl FROM pg_stat_replication r \
             JOIN pg_stat_ssl s ON s.pid = r.pid WHERE r.state = 'streaming'";
    let (name, ssl): (String, bool) = wait_for("the old primary streaming", T, || async {
        let row = s.query(q, &[]).await.ok()?.into_iter().next()?;
        Some((row.get(0), row.get(1)))
    })
    .await;
    assert_eq!(name, c.nodes[li].name);
    assert!(ssl, "the old primary streams over TLS");

    // An unusable CA file stops the agent at start, naming the key and the file.
    let bad = c.dir.join("bad.yml");
    let yaml = std::fs::read_to_string(&c.nodes[ri].config).unwrap();
    let missing = c.dir.join("no-such-ca.crt");
    std::fs::write(
        &bad,
        yaml.replace(
            &ca.ca_file.display().to_string(),
            &missing.display().to_string(),
        ),
    )
    .unwrap();
    let log = c.dir.join("bad.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_patronus"))
        .args(["agent", "-c"])
        .arg(&bad)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(c.dir.join("bad.err")).unwrap())
        .spawn()
        .expect("run patronus");
    let status = wait_for(
        "the misconfigured agent to exit",
        Duration::from_secs(30),
        || {
            let done = child.try_wait().ok().flatten();
            async move { done }
        },
    )
    .await;
    let err = std::fs::read_to_string(c.dir.join("bad.err")).unwrap_or_default();
    assert!(!status.success(), "the agent refuses to start: {err}");
    assert!(
        err.contains("postgresql.authentication.superuser") && err.contains("no-such-ca.crt"),
        "the error names the key and the file: {err}"
    );
}
