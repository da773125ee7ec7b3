//! A named lock under the cluster prefix, held on our lease (the reconciler's `gitops-lock`):
//! created only when absent, kept while our lease lives, gone when it expires.

use super::EtcdDcs;
use crate::dcs::traits::DcsResult;
use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};

impl EtcdDcs {
    /// Takes or keeps lock `rel` for `id`: refreshes our lease, then true when the key names
    /// us on that lease, or was absent and is now created with our id on it. A key holding
    /// our id on another lease (an earlier process with the same id) is left to expire: two
    /// processes never both believe they hold it.
    pub async fn hold_lock(&self, rel: &str, id: &str) -> DcsResult<bool> {
        let lease = self.refresh_lease().await?;
        let key = self.keys.key(rel);
        let ours = self
            .txn(
                "check lock",
                Txn::new().when([
                    Compare::value(key.clone(), CompareOp::Equal, id),
                    Compare::lease(key.clone(), CompareOp::Equal, lease),
                ]),
            )
            .await?;
        if ours {
            return Ok(true);
        }
        self.txn(
            "acquire lock",
            Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key,
                    id,
                    Some(PutOptions::new().with_lease(lease)),
                )]),
        )
        .await
    }

    /// Deletes lock `rel` when it still names `id` (a clean stop: the next holder need not
    /// wait for the lease to expire).
    pub async fn release_lock(&self, rel: &str, id: &str) -> DcsResult<bool> {
        let key = self.keys.key(rel);
        self.txn(
            "release lock",
            Txn::new()
                .when([Compare::value(key.clone(), CompareOp::Equal, id)])
                .and_then([TxnOp::delete(key, None)]),
        )
        .await
    }
}
