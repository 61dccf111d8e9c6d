//! [`Upload`]: reassembles the bytes of a plugin deploy that a client streams after its request
//! frame, as [`ClientFrame::Chunk`](super::ClientFrame::Chunk)s. Pure: the management handler feeds
//! it frames; it enforces the size limit, the announced size and the hash.

use bytes::{Bytes, BytesMut};

use crate::hash::{sha256, sha256_hex};
use crate::proto::{MAX_PLUGIN_BYTES, RequestError, RequestId};

/// An upload in progress.
#[derive(Debug)]
pub struct Upload {
    id: RequestId,
    size: usize,
    sha256: [u8; 32],
    received: BytesMut,
}

impl Upload {
    /// Starts receiving `size` bytes hashing to `sha256` for request `id`.
    pub fn start(id: RequestId, size: u64, sha256: [u8; 32]) -> Result<Self, RequestError> {
        let size = usize::try_from(size)
            .ok()
            .filter(|size| *size <= MAX_PLUGIN_BYTES)
            .ok_or(RequestError::TooLarge {
                len: usize::try_from(size).unwrap_or(usize::MAX),
                max: MAX_PLUGIN_BYTES,
            })?;
        Ok(Self {
            id,
            size,
            sha256,
            received: BytesMut::with_capacity(size),
        })
    }

    /// Whether every announced byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.received.len() == self.size
    }

    /// Adds a chunk of request `id`.
    pub fn push(&mut self, id: RequestId, data: &[u8]) -> Result<(), RequestError> {
        if id != self.id {
            return Err(RequestError::Malformed(
                "a chunk of another request arrived in the middle of an upload".into(),
            ));
        }
        if data.len() > self.size - self.received.len() {
            return Err(RequestError::Malformed(format!(
                "the upload announced {} bytes but more arrived",
                self.size
            )));
        }
        self.received.extend_from_slice(data);
        Ok(())
    }

    /// The uploaded bytes, once complete and matching the announced hash.
    pub fn finish(self) -> Result<Bytes, RequestError> {
        if !self.is_complete() {
            return Err(RequestError::Malformed(format!(
                "the upload ended after {} of {} bytes",
                self.received.len(),
                self.size
            )));
        }
        let bytes = self.received.freeze();
        let hash = sha256(&bytes);
        if hash != self.sha256 {
            return Err(RequestError::Malformed(format!(
                "the uploaded bytes hash to {}, not to the announced {}: the upload was damaged",
                sha256_hex(&hash),
                sha256_hex(&self.sha256)
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reassembles_chunks_and_checks_the_hash() {
        let data = b"0123456789".repeat(100);
        let mut upload = Upload::start([1; 16], data.len() as u64, sha256(&data)).unwrap();
        for chunk in data.chunks(64) {
            assert!(!upload.is_complete());
            upload.push([1; 16], chunk).unwrap();
        }
        assert!(upload.is_complete());
        assert_eq!(upload.finish().unwrap(), Bytes::from(data));
    }

    #[test]
    fn refuses_oversize_overflow_foreign_chunks_and_bad_hashes() {
        assert!(matches!(
            Upload::start([1; 16], MAX_PLUGIN_BYTES as u64 + 1, [0; 32]),
            Err(RequestError::TooLarge { .. })
        ));
        let mut upload = Upload::start([1; 16], 4, sha256(b"abcd")).unwrap();
        assert!(upload.push([2; 16], b"ab").is_err());
        assert!(upload.push([1; 16], b"abcde").is_err());
        upload.push([1; 16], b"ab").unwrap();
        let short = Upload::start([1; 16], 4, sha256(b"abcd")).unwrap();
        assert!(short.finish().is_err());
        let mut wrong = Upload::start([1; 16], 4, sha256(b"abcd")).unwrap();
        wrong.push([1; 16], b"abce").unwrap();
        assert!(matches!(wrong.finish(), Err(RequestError::Malformed(_))));
    }

    proptest! {
        /// Whatever chunks arrive, the upload never panics and never holds more than announced.
        #[test]
        fn arbitrary_chunks_never_panic(size in 0u64..512, chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..128), 0..8)) {
            let mut upload = Upload::start([0; 16], size, [0; 32]).unwrap();
            for chunk in &chunks {
                let _ = upload.push([0; 16], chunk);
                prop_assert!(upload.received.len() as u64 <= size);
            }
            let _ = upload.finish();
        }
    }
}
