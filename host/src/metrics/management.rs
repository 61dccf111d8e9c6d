//! [`ManagementCounters`]: what the management and metrics servers count: requests by operation,
//! errors, forwards, subscriptions and the access policy's denials.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::{ManagementFigures, op};

/// Counters the management server keeps.
#[derive(Debug, Default)]
pub(crate) struct ManagementCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    forwarded: AtomicU64,
    subscribers: AtomicU64,
    /// Requests by operation, in the order of [`op::ALL`].
    asked: [AtomicU64; op::ALL.len()],
    /// Denials by operation, in the order of [`op::ALL`].
    denied: [AtomicU64; op::ALL.len()],
}

fn slot(operation: &str) -> Option<usize> {
    op::ALL.iter().position(|name| *name == operation)
}

fn by_operation(counts: &[AtomicU64]) -> Vec<(String, u64)> {
    op::ALL
        .iter()
        .zip(counts)
        .map(|(name, count)| (name.to_string(), count.load(Ordering::Relaxed)))
        .filter(|(_, count)| *count > 0)
        .collect()
}

impl ManagementCounters {
    /// Counts an answered request.
    pub(crate) fn answered(&self, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request for `operation` (an access-table name), before it is judged.
    pub(crate) fn asked(&self, operation: &str) {
        if let Some(slot) = slot(operation) {
            self.asked[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request the access policy refused.
    pub(crate) fn denied(&self, operation: &str) {
        if let Some(slot) = slot(operation) {
            self.denied[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request forwarded to the leader.
    pub(crate) fn forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a subscription opening (`true`) or closing.
    pub(crate) fn subscription(&self, open: bool) {
        if open {
            self.subscribers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.subscribers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn figures(&self) -> ManagementFigures {
        ManagementFigures {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            subscribers: self.subscribers.load(Ordering::Relaxed),
            requests_by_operation: by_operation(&self.asked),
            denied: by_operation(&self.denied),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count() {
        let counters = ManagementCounters::default();
        counters.answered(true);
        counters.answered(false);
        counters.forwarded();
        counters.subscription(true);
        counters.subscription(true);
        counters.subscription(false);
        counters.asked(op::DATA_WRITE);
        counters.asked(op::DATA_WRITE);
        counters.asked(op::METRICS_READ);
        counters.denied(op::DATA_WRITE);
        counters.denied(op::DATA_WRITE);
        counters.denied("not-an-operation");
        assert_eq!(
            counters.figures(),
            ManagementFigures {
                requests: 2,
                errors: 1,
                forwarded: 1,
                subscribers: 1,
                requests_by_operation: vec![
                    (op::DATA_WRITE.to_string(), 2),
                    (op::METRICS_READ.to_string(), 1)
                ],
                denied: vec![(op::DATA_WRITE.to_string(), 2)],
            }
        );
    }
}
