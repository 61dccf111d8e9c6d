//! The storage error type. Any storage error is fatal to the node: it stops cleanly and recovers
//! from disk on restart.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// fjall refused an operation.
    #[error("storage failed to {verb} {subject}: {source}")]
    Fjall {
        /// What was being done, e.g. "read".
        verb: &'static str,
        /// What it was done to, e.g. "state machine data".
        subject: &'static str,
        /// fjall's error.
        #[source]
        source: fjall::Error,
    },
    /// Bytes on disk did not decode.
    #[error("stored {subject} is corrupt: {reason}")]
    Corrupt {
        /// What failed to decode.
        subject: &'static str,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn fjall(
        verb: &'static str,
        subject: &'static str,
    ) -> impl FnOnce(fjall::Error) -> Self {
        move |source| Self::Fjall {
            verb,
            subject,
            source,
        }
    }
}
