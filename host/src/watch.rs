//! Watching keys: every change the state machine makes through the `kv` interface, tagged with
//! the log index that made it, delivered in log order.
//!
//! The apply transaction records each entry's net changes (`store/txn.rs`); the state store
//! writes them to its history, in the same atomic batch as the data, and prunes the history back
//! to the `watch_history` horizon (`store/change_history.rs`); then it hands them to the
//! [`WatchHub`], which copies the changes each watcher asked for into that watcher's bounded
//! [`WatchQueue`]. A watch from a past index reads the history first ([`WatchFeed`]). Nothing
//! here can slow a write: offering to a full queue ends that watch ("fell behind at N") instead
//! of waiting for it.

mod hub;
mod queue;
mod stream;

pub(crate) use hub::{QUEUE_MAX_BYTES, QUEUE_MAX_CHANGES, Registration, WatchHub};
pub(crate) use queue::WatchQueue;
pub use queue::Watched;
pub(crate) use stream::HistoryRead;
pub use stream::WatchFeed;
