//! The [`StateMachine`] trait and the glue that runs it over a packed batch, one entry at a time
//! between the host's entry boundaries.

use alloc::string::String;
use alloc::vec::Vec;

use crate::bindings::state_machine::iroh_raft::plugin::entry as host;
use crate::heap;
use crate::{ApplyContext, QueryContext, Result};

/// A replicated state machine.
///
/// Every replica calls `apply` with the same entries in the same order, so `apply` must depend only
/// on the keyspace and the command: the SDK gives it no clock and no randomness. Keep all state in
/// the keyspace, never in statics: every entry starts on a fresh heap (memory allocated during one
/// entry is gone at the next), and the host may re-create the instance at any entry.
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

    /// What `command` writes, named for the access policy so that it can judge the command per
    /// key: `key/<key>` ([`resource::key`](crate::resource::key)) for one key, `prefix/<prefix>`
    /// ([`resource::prefix`](crate::resource::prefix)) for every key under a prefix, bytes
    /// outside printable ASCII and `%` escaped as `%XX`. `None` (the default) means the plugin
    /// cannot narrow it: the command is judged as a whole
    /// ([`resource::STATE_MACHINE`](crate::resource::STATE_MACHINE)). An error (the command does
    /// not decode) is judged as a whole too; applying it then fails it as usual. Runs on the node
    /// the client reached, with no keyspace.
    fn command_resources(command: &[u8]) -> Result<Option<Vec<String>>> {
        let _ = command;
        Ok(None)
    }

    /// What `request` (a query) reads, named as for [`StateMachine::command_resources`].
    fn query_resources(request: &[u8]) -> Result<Option<Vec<String>>> {
        let _ = request;
        Ok(None)
    }
}

/// Tells the host an entry's arena is exhausted; the host traps the entry as out of memory.
fn exhausted(needed: u64) {
    host::out_of_memory(needed);
}

/// Runs `M::apply` over every entry of a packed batch, reporting each outcome to the host.
///
/// Each entry runs on a freshly reset arena and reads its command from a copy in that arena, so
/// the instructions it executes and the memory it touches are the same in any batch.
pub fn apply_batch<M: StateMachine>(
    first_index: u64,
    entry_memory: u64,
    lens: Vec<u32>,
    payloads: Vec<u8>,
) {
    let moved = heap::enter_apply(entry_memory, exhausted);
    // The window holding the batch may have moved above the arena; read it where it is now.
    let (lens_at, payloads_at) = (
        (lens.as_ptr() as usize).wrapping_add(moved) as *const u32,
        (payloads.as_ptr() as usize).wrapping_add(moved) as *const u8,
    );
    // SAFETY: `enter_apply` moved the window's bytes by `moved` (0 if it did not move them), and
    // the moved window stays untouched until `heap::leave`.
    let (lens_now, payloads_now) = unsafe {
        (
            core::slice::from_raw_parts(lens_at, lens.len()),
            core::slice::from_raw_parts(payloads_at, payloads.len()),
        )
    };
    let mut batch = Batch {
        lens: lens_now,
        payloads: payloads_now,
        next: 0,
        offset: 0,
        first_index,
        output: (core::ptr::null(), 0),
        failed: false,
    };
    batch.output.0 = batch.payloads.as_ptr();
    while step::<M>(&mut batch) {}
    heap::leave();
    // Window blocks are released with the window; their (stale) pointers are never freed.
    core::mem::forget(lens);
    core::mem::forget(payloads);
}

/// Where an `apply` call is: the batch, the next entry, and the outcome of the last one.
struct Batch<'a> {
    lens: &'a [u32],
    payloads: &'a [u8],
    next: usize,
    offset: usize,
    first_index: u64,
    /// The last entry's output (in its arena, which is reset only after the host read it).
    output: (*const u8, usize),
    failed: bool,
}

/// Marks a boundary, then runs the next entry (if any) and keeps its outcome for the next
/// boundary. Everything an entry pays for lies between two boundary calls made from the one call
/// site here, through one loop: the same instructions for every entry, whichever its place in
/// the batch. Nothing of an entry runs after its boundary: its blocks are forgotten, not freed,
/// and the next `start_entry` reclaims them.
#[inline(never)]
fn step<M: StateMachine>(batch: &mut Batch<'_>) -> bool {
    // SAFETY: `output` points at the last entry's output (or an empty range of the batch),
    // untouched since: the arena is reset only below.
    let output = unsafe { core::slice::from_raw_parts(batch.output.0, batch.output.1) };
    host::boundary(output, batch.failed);
    let Some(&len) = batch.lens.get(batch.next) else {
        return false;
    };
    let end = batch.offset.saturating_add(len as usize);
    let Some(command) = batch.payloads.get(batch.offset..end) else {
        return false;
    };
    heap::start_entry();
    let command = command.to_vec();
    let index = batch.first_index + batch.next as u64;
    let outcome = M::apply(&mut ApplyContext::new(), index, &command);
    core::mem::forget(command);
    match outcome {
        Ok(response) => {
            batch.output = (response.as_ptr(), response.len());
            batch.failed = false;
            core::mem::forget(response);
        }
        Err(error) => {
            let message = error.message();
            batch.output = (message.as_ptr(), message.len());
            batch.failed = true;
            core::mem::forget(error);
        }
    }
    batch.next += 1;
    batch.offset = end;
    true
}

/// Runs `M::query`.
pub fn query<M: StateMachine>(request: &[u8]) -> core::result::Result<Vec<u8>, String> {
    heap::enter_body();
    let result = M::query(&QueryContext::new(), request).map_err(crate::Error::into_message);
    heap::leave();
    result
}

/// Runs `M::command_resources` (`write`) or `M::query_resources`.
pub fn resources<M: StateMachine>(
    request: &[u8],
    write: bool,
) -> core::result::Result<Option<Vec<String>>, String> {
    heap::enter_body();
    let result = if write {
        M::command_resources(request)
    } else {
        M::query_resources(request)
    };
    heap::leave();
    result.map_err(crate::Error::into_message)
}

/// Runs `M::migrate`.
pub fn migrate<M: StateMachine>(from_version: &str) -> core::result::Result<(), String> {
    heap::enter_body();
    let result =
        M::migrate(&mut ApplyContext::new(), from_version).map_err(crate::Error::into_message);
    heap::leave();
    result
}
