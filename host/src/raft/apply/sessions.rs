//! [`Sessions`]: the client sessions of the applied state, so every replica applies a tagged write
//! once however many log entries carry it (Raft thesis §6.3).
//!
//! A session is created by its first write and remembers, for each write the client has not yet
//! acknowledged (`SessionTag::acked`), the index it was applied at and its result. Everything is
//! decided from the entry and the table before it, so every replica, whatever its apply batches,
//! decides the same: the table is part of the applied state, committed with the data and carried
//! in snapshots (whose header holds at most 1 MiB). It is bounded so it always fits:
//! [`MAX_SESSIONS`] sessions, [`MAX_WRITES_PER_SESSION`] unacknowledged writes each, results of at
//! most [`MAX_KEPT_RESULT`] bytes and [`MAX_KEPT_BYTES`] in all, and a session idle for
//! [`SESSION_IDLE_ENTRIES`] log entries is gone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::proto::{ApplyResponse, SessionTag};

/// At most this many sessions; a new one beyond it replaces the one idle longest.
pub(crate) const MAX_SESSIONS: usize = 1024;
/// Unacknowledged writes a session remembers; the oldest beyond it are forgotten. The clients
/// never have more in flight.
pub(crate) const MAX_WRITES_PER_SESSION: usize = 16;
/// Results up to this size are kept for retries; a larger one is recorded as applied only.
pub(crate) const MAX_KEPT_RESULT: usize = 256;
/// Result bytes kept over all sessions; past it, results are recorded as applied only.
pub(crate) const MAX_KEPT_BYTES: usize = 256 << 10;
/// A session with no write for this many log entries expires.
pub(crate) const SESSION_IDLE_ENTRIES: u64 = 1_000_000;

/// Every live session, by client id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sessions {
    by_client: BTreeMap<[u8; 16], Session>,
    /// Result bytes kept in all sessions.
    kept_bytes: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    /// Index of the session's latest write.
    last_index: u64,
    /// Writes below this number were acknowledged to the client.
    acked: u64,
    /// Writes below this number that are not in `writes` were forgotten (too many in flight).
    forgotten_below: u64,
    /// Unacknowledged writes by number.
    writes: BTreeMap<u64, Written>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Written {
    index: u64,
    result: Kept,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Kept {
    /// Being applied in this apply call; filled in before anything commits.
    Pending,
    Result(ApplyResponse),
    /// Applied, but its result (this many bytes) was too large to keep.
    TooLarge(usize),
}

/// What to do with a tagged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// First time: apply it, then [`Sessions::record`] its result.
    Apply,
    /// Seen before (or never to be applied): answer with [`Sessions::answer`], do not apply.
    Repeat,
}

impl Sessions {
    /// Decides whether the write tagged `tag`, at log index `index`, is applied.
    pub(crate) fn admit(&mut self, tag: &SessionTag, index: u64) -> Admission {
        let expired = self
            .by_client
            .get(&tag.client)
            .is_some_and(|session| idle(session, index));
        if expired {
            self.remove(&tag.client);
        }
        if !self.by_client.contains_key(&tag.client) {
            self.make_room(index);
        }
        let session = self.by_client.entry(tag.client).or_default();
        session.last_index = index;
        if tag.acked > session.acked {
            session.acked = tag.acked;
            let kept = session.writes.split_off(&tag.acked);
            let answered = std::mem::replace(&mut session.writes, kept);
            self.kept_bytes = self
                .kept_bytes
                .saturating_sub(answered.values().map(Written::kept_bytes).sum::<usize>());
        }
        if tag.seq < session.acked
            || session.writes.contains_key(&tag.seq)
            || tag.seq < session.forgotten_below
        {
            return Admission::Repeat;
        }
        session.writes.insert(
            tag.seq,
            Written {
                index,
                result: Kept::Pending,
            },
        );
        while session.writes.len() > MAX_WRITES_PER_SESSION {
            if let Some((seq, forgotten)) = session.writes.pop_first() {
                session.forgotten_below = session.forgotten_below.max(seq + 1);
                self.kept_bytes = self.kept_bytes.saturating_sub(forgotten.kept_bytes());
            }
        }
        Admission::Apply
    }

    /// Records the result of a write [`Self::admit`] let through.
    pub(crate) fn record(&mut self, tag: &SessionTag, result: &ApplyResponse) {
        let Some(written) = self
            .by_client
            .get_mut(&tag.client)
            .and_then(|session| session.writes.get_mut(&tag.seq))
        else {
            return;
        };
        let size = match result {
            ApplyResponse::Ok(bytes) => bytes.len(),
            ApplyResponse::Failed(message) => message.len(),
            _ => 0,
        };
        written.result = if size > MAX_KEPT_RESULT || self.kept_bytes + size > MAX_KEPT_BYTES {
            Kept::TooLarge(size)
        } else {
            self.kept_bytes += size;
            Kept::Result(result.clone())
        };
    }

    /// The answer to a write [`Self::admit`] refused as a repeat: the first result, or why there
    /// is none.
    pub(crate) fn answer(&self, tag: &SessionTag) -> ApplyResponse {
        let session = self.by_client.get(&tag.client);
        let Some(written) = session.and_then(|session| session.writes.get(&tag.seq)) else {
            let why = if session.is_some_and(|s| tag.seq < s.acked) {
                "was already answered"
            } else {
                "was forgotten: the session had more than 16 writes in flight, so whether it was \
                 applied is not known"
            };
            return ApplyResponse::Failed(format!(
                "write {} of this session {why}; it is not applied again",
                tag.seq
            ));
        };
        let first = match &written.result {
            Kept::Result(result) => result.clone(),
            Kept::TooLarge(size) => ApplyResponse::Failed(format!(
                "write {} of this session was applied at index {}; its {size}-byte result was \
                 too large to keep (results over {MAX_KEPT_RESULT} bytes, or past {MAX_KEPT_BYTES} \
                 in all), so a retry cannot return it",
                tag.seq, written.index
            )),
            Kept::Pending => ApplyResponse::Failed(format!(
                "write {} of this session is being applied at index {}",
                tag.seq, written.index
            )),
        };
        ApplyResponse::Repeated {
            index: written.index,
            first: Box::new(first),
        }
    }

    /// Number of live sessions.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Before a new session: drops the expired ones, then the one idle longest if still full.
    fn make_room(&mut self, index: u64) {
        let expired: Vec<[u8; 16]> = self
            .by_client
            .iter()
            .filter(|(_, session)| idle(session, index))
            .map(|(client, _)| *client)
            .collect();
        for client in &expired {
            self.remove(client);
        }
        if self.by_client.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .by_client
                .iter()
                .min_by_key(|(client, session)| (session.last_index, **client))
                .map(|(client, _)| *client)
        {
            self.remove(&oldest);
        }
    }

    fn remove(&mut self, client: &[u8; 16]) {
        if let Some(session) = self.by_client.remove(client) {
            self.kept_bytes = self.kept_bytes.saturating_sub(
                session
                    .writes
                    .values()
                    .map(Written::kept_bytes)
                    .sum::<usize>(),
            );
        }
    }
}

impl Written {
    /// Result bytes this write holds against [`MAX_KEPT_BYTES`].
    fn kept_bytes(&self) -> usize {
        match &self.result {
            Kept::Result(ApplyResponse::Ok(bytes)) => bytes.len(),
            Kept::Result(ApplyResponse::Failed(message)) => message.len(),
            _ => 0,
        }
    }
}

fn idle(session: &Session, index: u64) -> bool {
    index > session.last_index.saturating_add(SESSION_IDLE_ENTRIES)
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
