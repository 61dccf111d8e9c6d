//! [`RecentAnswers`]: what the last entries applied on this node returned, kept in memory so an
//! entry handed to `apply` a second time answers what it answered the first time.
//!
//! That happens when the node replaces its raft core (new election timeouts): the old core's
//! state-machine task may still hold a queued apply call, with the responders of the clients
//! waiting on it, when the new core reads the applied position and applies the same entries. The
//! second call must not apply them again, and the clients waiting on it must hear the real outcome,
//! not "already applied". Only a core of this process can repeat an apply call, so memory suffices.

use std::collections::VecDeque;

use crate::proto::{ApplyResponse, PluginOutcome};

/// Entries whose answers are kept.
const KEEP_ENTRIES: usize = 4096;
/// Bytes of answers kept; the oldest go first.
const KEEP_BYTES: usize = 16 << 20;

/// The answers of the last applied entries, by log index, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RecentAnswers {
    answers: VecDeque<(u64, ApplyResponse)>,
    bytes: usize,
}

impl RecentAnswers {
    /// Records the answers of entries applied in log order, the first at `first_index`. An answer
    /// larger than the whole budget is not kept.
    pub(crate) fn record(&mut self, first_index: u64, answers: &[ApplyResponse]) {
        if self
            .answers
            .back()
            .is_some_and(|(last, _)| *last >= first_index)
        {
            // Not after what is kept (cannot happen: applies only move forward): start over
            // rather than keep answers out of order.
            self.answers.clear();
            self.bytes = 0;
        }
        for (index, answer) in (first_index..).zip(answers) {
            let weight = weight(answer);
            if weight > KEEP_BYTES {
                continue;
            }
            self.answers.push_back((index, answer.clone()));
            self.bytes += weight;
        }
        while self.answers.len() > KEEP_ENTRIES || self.bytes > KEEP_BYTES {
            let Some((_, oldest)) = self.answers.pop_front() else {
                break;
            };
            self.bytes -= weight(&oldest);
        }
    }

    /// What applying the entry at `index` returned, if it is still kept.
    pub(crate) fn get(&self, index: u64) -> Option<&ApplyResponse> {
        let position = self
            .answers
            .binary_search_by_key(&index, |(at, _)| *at)
            .ok()?;
        Some(&self.answers[position].1)
    }

    /// The answer for an entry at `index` that was applied already: the first answer if it is
    /// kept, otherwise an error saying the entry is not applied again.
    pub(crate) fn repeat(&self, index: u64) -> ApplyResponse {
        tracing::info!(
            index,
            "entry handed over again after it was applied: not applied again"
        );
        self.get(index).cloned().unwrap_or_else(|| {
            ApplyResponse::Failed(format!(
                "entry {index} was already applied; this copy was not applied again"
            ))
        })
    }
}

/// The bytes an answer holds, roughly.
fn weight(answer: &ApplyResponse) -> usize {
    let own = match answer {
        ApplyResponse::None => 0,
        ApplyResponse::Ok(bytes) => bytes.len(),
        ApplyResponse::Failed(message) => message.len(),
        ApplyResponse::Plugin(PluginOutcome::Activated {
            version,
            from_version,
            ..
        }) => version.len() + from_version.len(),
        ApplyResponse::Plugin(PluginOutcome::Unchanged { version, .. }) => version.len(),
        ApplyResponse::Repeated { first, .. } => weight(first),
        ApplyResponse::Restored(outcome) => outcome.backup_id.len(),
    };
    own + 64
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn bug_an_entry_applied_twice_across_a_core_restart_answered_already_applied_now_its_first_answer()
     {
        let mut recent = RecentAnswers::default();
        recent.record(
            321,
            &[
                ApplyResponse::None,
                ApplyResponse::Ok(Bytes::from_static(b"total 7")),
                ApplyResponse::Failed("no such key".into()),
            ],
        );
        assert_eq!(
            recent.repeat(322),
            ApplyResponse::Ok(Bytes::from_static(b"total 7"))
        );
        assert_eq!(
            recent.repeat(323),
            ApplyResponse::Failed("no such key".into())
        );
        assert_eq!(recent.repeat(321), ApplyResponse::None);
        let ApplyResponse::Failed(message) = recent.repeat(320) else {
            panic!("an answer that was never kept");
        };
        assert!(
            message.contains("entry 320 was already applied"),
            "{message}"
        );
    }

    #[test]
    fn answers_are_bounded_in_count_and_bytes_oldest_first() {
        let mut recent = RecentAnswers::default();
        for index in 0..(KEEP_ENTRIES as u64 + 10) {
            recent.record(index, &[ApplyResponse::None]);
        }
        assert_eq!(recent.answers.len(), KEEP_ENTRIES);
        assert!(recent.get(9).is_none() && recent.get(10).is_some());

        let big = ApplyResponse::Ok(Bytes::from(vec![0u8; KEEP_BYTES / 4]));
        recent.record(
            100_000,
            &[big.clone(), big.clone(), big.clone(), big.clone()],
        );
        assert!(recent.bytes <= KEEP_BYTES);
        assert!(recent.get(100_000).is_none(), "the oldest went first");
        assert_eq!(recent.get(100_003), Some(&big));

        let huge = ApplyResponse::Ok(Bytes::from(vec![0u8; KEEP_BYTES + 1]));
        recent.record(200_000, &[huge]);
        assert!(
            recent.get(200_000).is_none(),
            "larger than the budget: not kept"
        );
        assert_eq!(recent.get(100_003), Some(&big), "and it evicts nothing");
    }
}
