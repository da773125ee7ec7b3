use super::*;

/// A leader and two streaming replicas as `cluster_json` produces them.
fn fixture() -> Value {
    json!({
        "members": [
            {
                "name": "pg-a", "role": "leader", "state": "running",
                "api_url": "http://10.0.0.1:8008/patroni", "host": "10.0.0.1", "port": 5432,
                "timeline": 3, "pending_restart": true,
                "pending_restart_reason": {
                    "max_connections": {"old_value": "100", "new_value": "200"},
                    "shared_buffers": {"old_value": "128MB", "new_value": "256MB"}
                }
            },
            {
                "name": "pg-b", "role": "sync_standby", "state": "streaming",
                "api_url": "http://10.0.0.2:8008/patroni", "host": "10.0.0.2", "port": 5433,
                "timeline": 3, "tags": {"nofailover": true},
                "receive_lsn": "0/5000060", "receive_lag": 0,
                "replay_lsn": "0/4D00060", "replay_lag": 3145728,
                "lsn": "0/4D00060", "lag": 3145728
            },
            {
                "name": "pg-c", "role": "replica", "state": "streaming",
                "api_url": "http://10.0.0.3:8008/patroni", "host": "10.0.0.3", "port": 5432,
                "timeline": 3,
                "receive_lsn": "0/5000060", "receive_lag": 786432,
                "replay_lsn": "0/4F00000", "replay_lag": "unknown",
                "lsn": "0/4F00000", "lag": "unknown"
            }
        ],
        "scope": "batman",
        "pause": true,
        "scheduled_switchover": {"at": "2026-05-01T10:00:00+00:00", "from": "pg-a", "to": "pg-b"}
    })
}

const SYSID: Option<&str> = Some("7277694203142172922");

fn list(fmt: Format) -> String {
    render_list("batman", SYSID, &fixture(), &fmt, &ListOptions::default())
}

#[test]
fn pretty_list() {
    let want = "\
+ Cluster: batman (7277694203142172922) +-----------+----+-------------+-----+------------+-----+-----------------+------------------------------+------------------+
| Member | Host          | Role         | State     | TL | Receive LSN | Lag | Replay LSN | Lag | Pending restart | Pending restart reason       | Tags             |
+--------+---------------+--------------+-----------+----+-------------+-----+------------+-----+-----------------+------------------------------+------------------+
| pg-a   | 10.0.0.1:5432 | Leader       | running   |  3 |             |     |            |     | *               | max_connections: 100->200    |                  |
|        |               |              |           |    |             |     |            |     |                 | shared_buffers: 128MB->256MB |                  |
+--------+---------------+--------------+-----------+----+-------------+-----+------------+-----+-----------------+------------------------------+------------------+
| pg-b   | 10.0.0.2:5433 | Sync Standby | streaming |  3 |   0/5000060 |   0 |  0/4D00060 |   3 |                 |                              | nofailover: true |
+--------+---------------+--------------+-----------+----+-------------+-----+------------+-----+-----------------+------------------------------+------------------+
| pg-c   | 10.0.0.3:5432 | Replica      | streaming |  3 |   0/5000060 |   1 |  0/4F00000 |     |                 |                              |                  |
+--------+---------------+--------------+-----------+----+-------------+-----+------------+-----+-----------------+------------------------------+------------------+
 Maintenance mode: on
 Switchover scheduled at: 2026-05-01T10:00:00+00:00
                    from: pg-a
                      to: pg-b
";
    assert_eq!(list(Format::Pretty), want);
}

#[test]
fn a_member_that_cannot_fence_is_named_under_the_table() {
    let mut c = fixture();
    c["members"][2]["fence_problem"] =
        serde_json::json!("watchdog required but /dev/watchdog does not exist");
    let out = render_list(
        "batman",
        SYSID,
        &c,
        &Format::Pretty,
        &ListOptions::default(),
    );
    assert!(
        out.ends_with(
            " Not a leader candidate: pg-c: watchdog required but /dev/watchdog does not exist\n"
        ),
        "{out}"
    );
}

#[test]
fn tsv_list() {
    let want = "\
Cluster\tMember\tHost\tRole\tState\tTL\tReceive LSN\tReceive Lag\tReplay LSN\tReplay Lag\tPending restart\tPending restart reason\tTags
batman\tpg-a\t10.0.0.1:5432\tLeader\trunning\t3\t\t\t\t\t*\tmax_connections: 100->200\nshared_buffers: 128MB->256MB\t
batman\tpg-b\t10.0.0.2:5433\tSync Standby\tstreaming\t3\t0/5000060\t0\t0/4D00060\t3\t\t\t{nofailover: true}
batman\tpg-c\t10.0.0.3:5432\tReplica\tstreaming\t3\t0/5000060\t1\t0/4F00000\t\t\t\t
";
    assert_eq!(list(Format::Tsv), want);
}

#[test]
fn json_list() {
    let want = concat!(
        r#"[{"Cluster": "batman", "Member": "pg-a", "Host": "10.0.0.1:5432", "Role": "Leader", "#,
        r#""State": "running", "TL": 3, "Pending restart": "*", "Pending restart reason": "#,
        r#""max_connections: 100->200\nshared_buffers: 128MB->256MB"}, "#,
        r#"{"Cluster": "batman", "Member": "pg-b", "Host": "10.0.0.2:5433", "Role": "Sync Standby", "#,
        r#""State": "streaming", "TL": 3, "Receive LSN": "0/5000060", "Receive Lag": 0, "#,
        r#""Replay LSN": "0/4D00060", "Replay Lag": 3, "Tags": {"nofailover": true}}, "#,
        r#"{"Cluster": "batman", "Member": "pg-c", "Host": "10.0.0.3:5432", "Role": "Replica", "#,
        r#""State": "streaming", "TL": 3, "Receive LSN": "0/5000060", "Receive Lag": 1, "#,
        r#""Replay LSN": "0/4F00000"}]"#,
        "\n"
    );
    let got = list(Format::Json);
    assert_eq!(got, want);
    let parsed: Value = serde_json::from_str(&got).unwrap_or_default();
    assert_eq!(parsed[1]["Tags"], json!({"nofailover": true}));
}

#[test]
fn yaml_list() {
    let want = "\
- Cluster: batman
  Host: 10.0.0.1:5432
  Member: pg-a
  Pending restart: '*'
  Pending restart reason: 'max_connections: 100->200

    shared_buffers: 128MB->256MB'
  Role: Leader
  State: running
  TL: 3
- Cluster: batman
  Host: 10.0.0.2:5433
  Member: pg-b
  Receive LSN: 0/5000060
  Receive Lag: 0
  Replay LSN: 0/4D00060
  Replay Lag: 3
  Role: Sync Standby
  State: streaming
  TL: 3
  Tags:
    nofailover: true
- Cluster: batman
  Host: 10.0.0.3:5432
  Member: pg-c
  Receive LSN: 0/5000060
  Receive Lag: 1
  Replay LSN: 0/4F00000
  Role: Replica
  State: streaming
  TL: 3

";
    let got = list(Format::Yaml);
    assert_eq!(got, want);
    let parsed: Value = serde_yaml::from_str(&got).unwrap_or_default();
    assert_eq!(
        parsed[0]["Pending restart reason"],
        "max_connections: 100->200\nshared_buffers: 128MB->256MB"
    );
    assert_eq!(parsed[1]["Tags"]["nofailover"], true);
}

/// Plain members on the default port: no optional columns, bare hosts.
fn simple_cluster() -> Value {
    json!({"members": [
        {"name": "m1", "role": "leader", "state": "running", "host": "h1", "port": 5432, "timeline": 1},
        {"name": "m2", "role": "standby_leader", "state": "running", "host": "h2", "port": 5432},
        {"name": "m3", "role": "quorum_standby", "state": "in archive recovery", "host": "h3",
         "port": 5432, "receive_lsn": null, "receive_lag": "unknown",
         "replay_lsn": "0/3000060", "replay_lag": 2621440}
    ], "scope": "s"})
}

#[test]
fn bare_hosts_timestamp_and_uninitialized() {
    let opts = ListOptions {
        timestamp: Some("2024-01-02 03:04:05".into()),
        ..Default::default()
    };
    let got = render_list("s", None, &simple_cluster(), &Format::Pretty, &opts);
    let want = "\
2024-01-02 03:04:05
+ Cluster: s (uninitialized) ----+---------------------+----+-------------+-----+------------+-----+
| Member | Host | Role           | State               | TL | Receive LSN | Lag | Replay LSN | Lag |
+--------+------+----------------+---------------------+----+-------------+-----+------------+-----+
| m1     | h1   | Leader         | running             |  1 |             |     |            |     |
| m2     | h2   | Standby Leader | running             |    |             |     |            |     |
| m3     | h3   | Quorum Standby | in archive recovery |    |             |     |  0/3000060 |   2 |
+--------+------+----------------+---------------------+----+-------------+-----+------------+-----+
";
    assert_eq!(got, want);
    let tsv = render_list("s", Some(""), &simple_cluster(), &Format::Tsv, &opts);
    assert!(
        tsv.starts_with("2024-01-02 03:04:05\nCluster\tMember"),
        "{tsv}"
    );
    let pretty = render_list(
        "s",
        Some(""),
        &simple_cluster(),
        &Format::Pretty,
        &ListOptions::default(),
    );
    assert!(
        pretty.starts_with("+ Cluster: s (initializing) -"),
        "{pretty}"
    );
}

#[test]
fn extended_and_shared_host() {
    let mut c = simple_cluster();
    c["members"][1]["host"] = json!("h1");
    c["members"][2]["scheduled_restart"] =
        json!({"schedule": "2026-01-01T00:00:00+00:00", "postgres_version": "17.2"});
    let opts = ListOptions {
        extended: true,
        ..Default::default()
    };
    let got = render_list("s", Some("1"), &c, &Format::Tsv, &opts);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[0],
        "Cluster\tMember\tHost\tRole\tState\tTL\tReceive LSN\tReceive Lag\tReplay LSN\tReplay Lag\t\
         Pending restart\tPending restart reason\tScheduled restart\tTags"
    );
    assert_eq!(
        lines[2],
        "s\tm2\th1:5432\tStandby Leader\trunning\t\t\t\t\t\t\t\t\t"
    );
    assert!(
        lines[3].ends_with("\t2026-01-01T00:00:00+00:00 if version < 17.2\t"),
        "{}",
        lines[3]
    );
    let json = render_list("s", Some("1"), &c, &Format::Json, &opts);
    assert!(json.contains(r#""Scheduled restart": "2026-01-01T00:00:00+00:00 if version < 17.2""#));
    assert!(!json.contains("Tags"));
}

#[test]
fn long_restart_reason_hidden_only_in_pretty() {
    let mut c = simple_cluster();
    let long = "x".repeat(45);
    c["members"][0]["pending_restart"] = json!(true);
    c["members"][0]["pending_restart_reason"] =
        json!({"param": {"old_value": "", "new_value": long}});
    let pretty = render_list("s", Some("1"), &c, &Format::Pretty, &ListOptions::default());
    assert!(
        pretty.contains("| param: [hidden - too long] |"),
        "{pretty}"
    );
    let tsv = render_list("s", Some("1"), &c, &Format::Tsv, &ListOptions::default());
    assert!(tsv.contains(&format!("\tparam: ->{long}")), "{tsv}");
}

#[test]
fn topology_nests_by_replicatefrom() {
    let c = json!({"members": [
        {"name": "a", "role": "replica", "state": "streaming", "host": "h", "port": 5432,
         "tags": {"replicatefrom": "c"}},
        {"name": "b", "role": "leader", "state": "running", "host": "h", "port": 5433},
        {"name": "c", "role": "replica", "state": "streaming", "host": "h", "port": 5434,
         "tags": {"replicatefrom": "b"}},
        {"name": "d", "role": "replica", "state": "streaming", "host": "h", "port": 5435,
         "tags": {"replicatefrom": "a", "nofailover": true}},
        {"name": "e", "role": "replica", "state": "streaming", "host": "h", "port": 5436,
         "tags": {"replicatefrom": "e"}}
    ]});
    let opts = ListOptions {
        topology: true,
        ..Default::default()
    };
    let got = render_list("t", Some("9"), &c, &Format::Pretty, &opts);
    let names: Vec<String> = got
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Member"))
        .map(|l| {
            l.split(" | ")
                .next()
                .unwrap_or("")
                .trim_start_matches("| ")
                .trim_end()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["b", "+ c", "  + a", "    + d", "+ e"]);
    assert!(
        got.contains("| {nofailover: true, replicatefrom: a} |"),
        "{got}"
    );
    assert!(got.contains("| h:5433 |"), "{got}");
}

#[test]
fn topology_without_leader_and_with_cycle() {
    let c = json!({"members": [
        {"name": "x", "role": "replica", "state": "stopped", "tags": {"replicatefrom": "y"}},
        {"name": "y", "role": "replica", "state": "stopped", "tags": {"replicatefrom": "x"}},
        {"name": "z", "role": "replica", "state": "stopped"}
    ]});
    let opts = ListOptions {
        topology: true,
        ..Default::default()
    };
    let got = render_list("t", Some("9"), &c, &Format::Tsv, &opts);
    let names: Vec<&str> = got
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    assert_eq!(names, ["+ z", "+ x", "+ y"]);
}

#[test]
fn empty_or_malformed_cluster() {
    let got = render_list(
        "s",
        Some("1"),
        &json!({}),
        &Format::Pretty,
        &ListOptions::default(),
    );
    assert!(got.starts_with("+ Cluster: s (1) "), "{got}");
    assert_eq!(got.lines().count(), 4);
    assert_eq!(
        render_list(
            "s",
            None,
            &json!(null),
            &Format::Json,
            &ListOptions::default()
        ),
        "[]\n"
    );
    assert_eq!(
        render_list(
            "s",
            None,
            &json!([1]),
            &Format::Yaml,
            &ListOptions::default()
        ),
        "[]\n\n"
    );
}

fn history() -> Value {
    json!([
        [
            1,
            24392648,
            "no recovery target specified",
            "2023-09-11T22:11:27.125527+00:00",
            "postgresql0"
        ],
        [
            2,
            50331864,
            "no recovery target specified",
            "2023-09-12T11:34:03.148097+00:00"
        ],
        [3, 83886704, "no recovery target specified"]
    ])
}

#[test]
fn history_pretty_and_tsv() {
    let want = "\
+----+----------+------------------------------+----------------------------------+-------------+
| TL |      LSN | Reason                       | Timestamp                        | New Leader  |
+----+----------+------------------------------+----------------------------------+-------------+
|  1 | 24392648 | no recovery target specified | 2023-09-11T22:11:27.125527+00:00 | postgresql0 |
|  2 | 50331864 | no recovery target specified | 2023-09-12T11:34:03.148097+00:00 |             |
|  3 | 83886704 | no recovery target specified |                                  |             |
+----+----------+------------------------------+----------------------------------+-------------+
";
    assert_eq!(render_history("b", &history(), &Format::Pretty), want);
    let tsv = render_history("b", &history(), &Format::Tsv);
    let want_tsv = "TL\tLSN\tReason\tTimestamp\tNew Leader\n\
        1\t24392648\tno recovery target specified\t2023-09-11T22:11:27.125527+00:00\tpostgresql0\n\
        2\t50331864\tno recovery target specified\t2023-09-12T11:34:03.148097+00:00\t\n\
        3\t83886704\tno recovery target specified\t\t\n";
    assert_eq!(tsv, want_tsv);
}

#[test]
fn history_json_and_yaml() {
    let json = render_history("b", &history(), &Format::Json);
    assert!(json
        .starts_with(r#"[{"TL": 1, "LSN": 24392648, "Reason": "no recovery target specified", "#));
    let tail = r#"{"TL": 3, "LSN": 83886704, "Reason": "no recovery target specified", "Timestamp": "", "New Leader": ""}]"#;
    assert!(json.ends_with(&format!("{tail}\n")), "{json}");
    let yaml = render_history("b", &history(), &Format::Yaml);
    let want = "\
- LSN: 24392648
  New Leader: postgresql0
  Reason: no recovery target specified
  TL: 1
  Timestamp: '2023-09-11T22:11:27.125527+00:00'
- LSN: 50331864
  New Leader: ''
  Reason: no recovery target specified
  TL: 2
  Timestamp: '2023-09-12T11:34:03.148097+00:00'
- LSN: 83886704
  New Leader: ''
  Reason: no recovery target specified
  TL: 3
  Timestamp: ''

";
    assert_eq!(yaml, want);
    assert_eq!(render_history("b", &json!(null), &Format::Json), "[]\n");
    let empty = render_history("b", &json!([]), &Format::Pretty);
    assert_eq!(empty.lines().count(), 4);
}

#[test]
fn role_titles_and_lag_rounding() {
    assert_eq!(title_role("sync_standby"), "Sync Standby");
    assert_eq!(title_role("standby_leader"), "Standby Leader");
    assert_eq!(title_role("quorum_standby"), "Quorum Standby");
    assert_eq!(lag_mb(json!(524288)), json!(0));
    assert_eq!(lag_mb(json!(1572864)), json!(2));
    assert_eq!(lag_mb(json!(2621440)), json!(2));
    assert_eq!(lag_mb(json!("unknown")), json!(""));
}
