//! Why a frame could not be read, written or decoded.

/// A frame could not be read, written or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer announced a frame over the limit; the stream is closed without reading it.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit for this protocol.
        max: usize,
    },
    /// The frame body did not decode.
    #[error("malformed frame: {0}")]
    Malformed(#[from] postcard::Error),
    /// The stream ended inside a frame.
    #[error("stream ended after {read} of {expected} bytes of a frame")]
    Truncated {
        /// Bytes of the frame that arrived.
        read: usize,
        /// Bytes announced.
        expected: usize,
    },
    /// The QUIC stream failed.
    #[error("stream failed: {0}")]
    Stream(String),
}
