//! openraft's own storage conformance suite, in full, against the fjall log store and the kv
//! plugin's state machine.

use iroh_raft::proto::PluginLimits;
use iroh_raft::storage::{FjallLogStore, RaftStorage, StateMachineStore};
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

use crate::support::{C, bounded, kv_plugin};

struct Builder;

impl StoreBuilder<C, FjallLogStore, StateMachineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, FjallLogStore, StateMachineStore), StorageError<C>> {
        let dir = TempDir::new().map_err(|e| StorageError::read(C::err_from_error(&e)))?;
        let (log, sm) = RaftStorage::open(dir.path(), kv_plugin(), PluginLimits::default())
            .map_err(|e| StorageError::read(C::err_from_error(&e)))?
            .into_parts();
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes() {
    bounded(
        180,
        Suite::<C, FjallLogStore, StateMachineStore, Builder, TempDir>::test_all(Builder),
    )
    .await
    .expect("openraft's storage suite");
}
