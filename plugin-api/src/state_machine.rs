//! The [`StateMachine`] trait and the glue that runs it over a packed batch.

use alloc::string::String;
use alloc::vec::Vec;

use crate::batch::{PackedResults, entries};
use crate::{ApplyContext, QueryContext, Result};

/// A replicated state machine.
///
/// Every replica calls `apply` with the same entries in the same order, so `apply` must depend only
/// on the keyspace and the command: the SDK gives it no clock and no randomness. Keep all state in
/// the keyspace, never in statics: the host may re-create the instance at any entry.
pub trait StateMachine {
    /// Applies one committed command at log `index` and returns the response bytes.
    ///
    /// Return an error *before* writing: an error fails the entry but keeps any writes it made. A
    /// panic or trap discards the entry's writes and fails only that entry.
    fn apply(ctx: &mut ApplyContext, index: u64, command: &[u8]) -> Result<Vec<u8>>;

    /// Answers a read-only request against a snapshot of the keyspace.
    fn query(ctx: &QueryContext, request: &[u8]) -> Result<Vec<u8>>;

    /// Upgrades data written by the plugin version `from_version` ("" on a new cluster). Runs once,
    /// when this version is activated, in the same atomic batch. An error rejects the deploy.
    fn migrate(ctx: &mut ApplyContext, from_version: &str) -> Result<()> {
        let _ = (ctx, from_version);
        Ok(())
    }
}

/// Runs `M::apply` over every entry of a packed batch.
pub fn apply_batch<M: StateMachine>(
    first_index: u64,
    lens: &[u32],
    payloads: &[u8],
) -> PackedResults {
    let mut ctx = ApplyContext::new();
    let mut results = PackedResults::with_capacity(lens.len());
    for (offset, command) in entries(lens, payloads).enumerate() {
        match M::apply(&mut ctx, first_index + offset as u64, command) {
            Ok(response) => results.push(Ok(&response)),
            Err(error) => results.push(Err(error.message())),
        }
    }
    results
}

/// Runs `M::query`.
pub fn query<M: StateMachine>(request: &[u8]) -> core::result::Result<Vec<u8>, String> {
    M::query(&QueryContext::new(), request).map_err(crate::Error::into_message)
}

/// Runs `M::migrate`.
pub fn migrate<M: StateMachine>(from_version: &str) -> core::result::Result<(), String> {
    M::migrate(&mut ApplyContext::new(), from_version).map_err(crate::Error::into_message)
}
