//! The kv state machine's logic: [`apply`] decodes a [`Command`], runs it against a [`KvAccess`]
//! and encodes the [`Response`]; [`query`] does the same for a [`Query`] against a [`KvRead`].
//!
//! Both are plain functions over the storage traits, so the wasm plugin and native code run the
//! very same code. A command fails only before it writes anything.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::query::scan_limit;
use crate::{Command, Key, KvAccess, KvRead, Pair, Query, QueryResponse, Response, decode, encode};

/// Applies one encoded [`Command`] and returns the encoded [`Response`], or a message saying why
/// the command was refused (in which case nothing was written).
pub fn apply(kv: &mut impl KvAccess, command: &[u8]) -> Result<Vec<u8>, String> {
    let command = decode_command(command)?;
    let response = execute(kv, command)?;
    encode(&response).map_err(|error| format!("kv response: {error}"))
}

/// Answers one encoded [`Query`] with an encoded [`QueryResponse`], or a message saying why the
/// query was refused.
pub fn query(kv: &impl KvRead, request: &[u8]) -> Result<Vec<u8>, String> {
    let request = decode_query(request)?;
    let response = match request {
        Query::Get { key } => {
            check_key(key)?;
            QueryResponse::Value(kv.get(key))
        }
        Query::Scan { start, end, limit } => scan(kv, start, end, limit),
        Query::Prefix { prefix, limit } => scan(kv, prefix, prefix_end(prefix).as_deref(), limit),
        Query::Keys { start, end, limit } => keys(kv, start, end, limit),
    };
    encode(&response).map_err(|error| format!("kv query response: {error}"))
}

/// Decodes a command, failing with the message [`apply`] gives.
pub(crate) fn decode_command(command: &[u8]) -> Result<Command<'_>, String> {
    decode(command).map_err(|error| format!("invalid kv command: {error}"))
}

/// Decodes a query, failing with the message [`query`] gives.
pub(crate) fn decode_query(request: &[u8]) -> Result<Query<'_>, String> {
    decode(request).map_err(|error| format!("invalid kv query: {error}"))
}

fn execute(kv: &mut impl KvAccess, command: Command<'_>) -> Result<Response, String> {
    match command {
        Command::Put { key, value } => {
            check_key(key)?;
            kv.put(key, value)?;
            Ok(Response::Written)
        }
        Command::Delete { key } => {
            check_key(key)?;
            Ok(Response::Deleted {
                existed: kv.delete(key),
            })
        }
        Command::Cas { key, expected, new } => {
            check_key(key)?;
            let current = kv.get(key);
            if current.as_deref() != expected {
                return Ok(Response::Cas {
                    swapped: false,
                    current,
                });
            }
            match new {
                Some(value) => kv.put(key, value)?,
                None => {
                    kv.delete(key);
                }
            }
            Ok(Response::Cas {
                swapped: true,
                current: new.map(<[u8]>::to_vec),
            })
        }
        Command::DeleteRange { start, end, limit } => {
            // Keys alone: the values are never read, however large they are.
            let (found, more) = limited(start, end, limit, |n| kv.scan_keys(start, end, n));
            let mut deleted = 0;
            for key in &found {
                if kv.delete(key) {
                    deleted += 1;
                }
            }
            Ok(Response::DeletedRange { deleted, more })
        }
    }
}

pub(crate) fn check_key(key: &[u8]) -> Result<(), String> {
    if key.is_empty() {
        Err(String::from(
            "the key is empty: kv keys must be at least one byte long",
        ))
    } else {
        Ok(())
    }
}

/// Up to `limit` items of `[start, end)` (see [`scan_limit`]), as `read` fetches them given how
/// many to fetch, and whether the range holds more: one item more than the limit is asked for to
/// learn it. A range whose end is not after its start holds nothing.
fn limited<T>(
    start: &[u8],
    end: Option<&[u8]>,
    limit: u32,
    read: impl FnOnce(usize) -> Vec<T>,
) -> (Vec<T>, bool) {
    if end.is_some_and(|end| end <= start) {
        return (Vec::new(), false);
    }
    let limit = scan_limit(limit) as usize;
    let mut found = read(limit + 1);
    let more = found.len() > limit;
    found.truncate(limit);
    (found, more)
}

/// Reads the pairs of `[start, end)`.
fn scan(kv: &impl KvRead, start: &[u8], end: Option<&[u8]>, limit: u32) -> QueryResponse {
    let (found, more) = limited(start, end, limit, |n| kv.scan(start, end, n));
    let pairs = found
        .into_iter()
        .map(|(key, value)| Pair { key, value })
        .collect();
    QueryResponse::Pairs { pairs, more }
}

/// Lists the keys of `[start, end)` without their values.
fn keys(kv: &impl KvRead, start: &[u8], end: Option<&[u8]>, limit: u32) -> QueryResponse {
    let (found, more) = limited(start, end, limit, |n| kv.scan_keys(start, end, n));
    let keys = found.into_iter().map(Key).collect();
    QueryResponse::Keys { keys, more }
}

pub use iroh_raft_access_types::resource::prefix_end;

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
