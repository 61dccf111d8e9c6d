//! The bundled key-value state machine, minus the wasm glue: its wire messages, their postcard
//! codec, the apply/query logic written against a small storage trait, and what each command and
//! query touches, named for the access policy ([`command_resources`], [`query_resources`]).
//!
//! The plugin (`iroh-raft-plugin-kv`) runs [`apply`] and [`query`] over the host's keyspace; native
//! code (the host's client, the CLI, a baseline benchmark) builds the same messages and can run the
//! very same logic over a `BTreeMap`:
//!
//! ```
//! use std::collections::BTreeMap;
//! use iroh_raft_kv_types::{Command, Query, QueryResponse, Response, apply, decode, encode, query};
//!
//! let mut kv = BTreeMap::new();
//! let put = encode(&Command::Put { key: b"greeting", value: b"hello" })?;
//! let response: Response = decode(&apply(&mut kv, &put)?)?;
//! assert_eq!(response, Response::Written);
//!
//! let get = encode(&Query::Get { key: b"greeting" })?;
//! let answer: QueryResponse = decode(&query(&kv, &get)?)?;
//! assert_eq!(answer, QueryResponse::Value(Some(b"hello".to_vec())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod access;
mod codec;
mod command;
mod machine;
mod query;
mod resources;

pub use access::{KvAccess, KvRead};
pub use codec::{CodecError, decode, encode};
pub use command::{Command, Response};
pub use machine::{apply, prefix_end, query};
pub use query::{Key, MAX_SCAN_LIMIT, Pair, Query, QueryResponse, scan_limit};
pub use resources::{command_resources, query_resources};
