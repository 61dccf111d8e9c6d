//! The frames of `iroh-raft-metrics/0`: a monitor opens a stream, sends one [`MetricsRequest`],
//! and reads [`MetricsReply`] frames: one for `Get`, a stream of them for `Subscribe` until it
//! closes the stream. Frames are bounded by [`super::alpn::MAX_METRICS_REQUEST`] from the client.

use serde::{Deserialize, Serialize};

use super::{MetricsCategory, MetricsSnapshot, RequestError};

/// The shortest interval a subscription may ask for; shorter ones are raised to it.
pub const MIN_SUBSCRIBE_INTERVAL_MS: u64 = 100;

/// A request on `iroh-raft-metrics/0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricsRequest {
    /// One snapshot of `categories` (every category when empty).
    Get {
        /// The categories wanted.
        categories: Vec<MetricsCategory>,
    },
    /// A snapshot of `categories` every `interval_ms` (at least [`MIN_SUBSCRIBE_INTERVAL_MS`])
    /// until the client closes the stream. The next snapshot is taken only once the previous one
    /// was written, so a slow reader gets fewer snapshots, never a queue.
    Subscribe {
        /// The categories wanted.
        categories: Vec<MetricsCategory>,
        /// The interval asked for.
        interval_ms: u64,
    },
}

impl MetricsRequest {
    /// The categories asked for.
    pub fn categories(&self) -> &[MetricsCategory] {
        match self {
            Self::Get { categories } | Self::Subscribe { categories, .. } => categories,
        }
    }
}

/// A frame from the node on `iroh-raft-metrics/0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricsReply {
    /// The figures asked for.
    Snapshot(Box<MetricsSnapshot>),
    /// Why there are none (a denial, a malformed or oversized request); the stream closes after it.
    Error(RequestError),
}

/// The interval a subscription asking for `asked_ms` gets.
pub fn subscribe_interval_ms(asked_ms: u64) -> u64 {
    asked_ms.max(MIN_SUBSCRIBE_INTERVAL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        LatencyHistogram, ManagementFigures, ProcessFigures, decode_body, encode_frame,
    };
    use proptest::prelude::*;

    fn categories() -> impl Strategy<Value = Vec<MetricsCategory>> {
        proptest::collection::vec(
            (0..MetricsCategory::ALL.len()).prop_map(|i| MetricsCategory::ALL[i]),
            0..7,
        )
    }

    fn request() -> impl Strategy<Value = MetricsRequest> {
        prop_oneof![
            categories().prop_map(|categories| MetricsRequest::Get { categories }),
            (categories(), any::<u64>()).prop_map(|(categories, interval_ms)| {
                MetricsRequest::Subscribe {
                    categories,
                    interval_ms,
                }
            }),
        ]
    }

    fn reply() -> impl Strategy<Value = MetricsReply> {
        prop_oneof![
            (
                any::<u64>(),
                proptest::collection::vec(0..1_000_000u64, 0..5),
                any::<u64>(),
                proptest::collection::vec(("[a-z.]{1,12}", any::<u64>()), 0..4)
            )
                .prop_map(|(node_id, counts, sum_us, requests)| {
                    MetricsReply::Snapshot(Box::new(MetricsSnapshot {
                        node_id,
                        raft: None,
                        storage: None,
                        network: None,
                        plugin: None,
                        management: Some(ManagementFigures {
                            requests: counts.iter().sum(),
                            errors: 0,
                            forwarded: 0,
                            subscribers: 0,
                            requests_by_operation: requests,
                            denied: Vec::new(),
                        }),
                        process: Some(ProcessFigures {
                            cpu_user_us: sum_us,
                            cpu_system_us: node_id,
                            max_resident_bytes: counts.len() as u64,
                        }),
                    }))
                    .with_histogram(LatencyHistogram {
                        bounds_us: (1..counts.len() as u64).collect(),
                        count: counts.len() as u64,
                        counts,
                        sum_us,
                    })
                }),
            ".{0,40}".prop_map(|reason| MetricsReply::Error(RequestError::Refused(reason))),
        ]
    }

    impl MetricsReply {
        /// Puts `histogram` where a snapshot carries one, so the round trip covers it.
        fn with_histogram(self, histogram: LatencyHistogram) -> Self {
            match self {
                Self::Snapshot(mut snapshot) => {
                    snapshot.storage = Some(crate::proto::StorageFigures {
                        database_bytes: histogram.sum_us,
                        log_bytes: 0,
                        keyspaces: Vec::new(),
                        snapshot_bytes: 0,
                        snapshot_age_secs: None,
                        fsync_latency: histogram,
                        appends_synced: 0,
                    });
                    Self::Snapshot(snapshot)
                }
                error => error,
            }
        }
    }

    proptest! {
        #[test]
        fn requests_round_trip(request in request()) {
            let bytes = encode_frame(&request).unwrap();
            prop_assert_eq!(decode_body::<MetricsRequest>(&bytes[4..]).unwrap(), request);
        }

        #[test]
        fn replies_round_trip(reply in reply()) {
            let bytes = encode_frame(&reply).unwrap();
            prop_assert_eq!(decode_body::<MetricsReply>(&bytes[4..]).unwrap(), reply);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_body::<MetricsRequest>(&bytes);
        }
    }

    #[test]
    fn intervals_are_clamped() {
        assert_eq!(subscribe_interval_ms(0), MIN_SUBSCRIBE_INTERVAL_MS);
        assert_eq!(subscribe_interval_ms(99), MIN_SUBSCRIBE_INTERVAL_MS);
        assert_eq!(subscribe_interval_ms(250), 250);
    }

    #[test]
    fn a_request_names_its_categories() {
        let request = MetricsRequest::Subscribe {
            categories: vec![MetricsCategory::Raft],
            interval_ms: 5,
        };
        assert_eq!(request.categories(), &[MetricsCategory::Raft]);
    }
}
