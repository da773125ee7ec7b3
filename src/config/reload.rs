//! What a reload of the node file can apply and what needs an agent restart.
//!
//! Patroni's `reload_config` applies the local PostgreSQL parameters, pg_hba, pg_ident,
//! tags, callbacks, logging and REST API settings in place; the identity of the member and
//! of its cluster, where it listens and where its data lives are read at start only.

use super::NodeConfig;

/// The keys whose change a reload cannot apply, in the order they are reported.
pub fn restart_needed(old: &NodeConfig, new: &NodeConfig) -> Vec<&'static str> {
    let (o, n) = (&old.postgresql, &new.postgresql);
    let checks: [(&'static str, bool); 10] = [
        ("name", old.name != new.name),
        ("scope", old.scope != new.scope),
        ("namespace", old.namespace != new.namespace),
        ("restapi.listen", old.restapi.listen != new.restapi.listen),
        ("etcd3", old.etcd3 != new.etcd3),
        ("postgresql.data_dir", o.data_dir != n.data_dir),
        ("postgresql.config_dir", o.config_dir != n.config_dir),
        ("postgresql.bin_dir", o.bin_dir != n.bin_dir),
        ("postgresql.listen", o.listen != n.listen),
        (
            "postgresql.authentication",
            o.authentication != n.authentication,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(k, changed)| changed.then_some(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_keys_need_no_restart() {
        let old = NodeConfig::default();
        let mut new = old.clone();
        new.postgresql
            .parameters
            .insert("work_mem".into(), "8MB".into());
        new.postgresql.pg_hba = Some(vec!["host all all 0.0.0.0/0 md5".into()]);
        new.tags.insert("nofailover".into(), true.into());
        new.log.level = "DEBUG".into();
        assert!(restart_needed(&old, &new).is_empty());
    }

    #[test]
    fn identity_and_addresses_need_a_restart() {
        let old = NodeConfig::default();
        let mut new = old.clone();
        new.restapi.listen = "0.0.0.0:9999".into();
        new.postgresql.data_dir = "/elsewhere".into();
        new.scope = "other".into();
        assert_eq!(
            restart_needed(&old, &new),
            ["scope", "restapi.listen", "postgresql.data_dir"]
        );
    }
}
