//! The snapshot file format: [`SnapshotWriter`] streams a header and a state machine's pairs out,
//! [`SnapshotReader`] streams them back in, checking framing, key order and a sha256 over the
//! whole file. Plain `std::io`, no fjall and no files: the format is tested on byte buffers.
//!
//! ```text
//! magic     8 bytes   "IRSNAP\0" + format version (2)
//! header    u32 BE length (at most 1 MiB) + postcard SnapshotHeader
//! plugin*   u32 BE length (at most 16 MiB) + the .wasm bytes, one per hash the header's plugin
//!           registry references, in ascending hash order; each must hash to its name
//! pair*     0x01, u32 BE key length (at most 65536), key, u32 BE value length, value
//!           keys strictly ascending
//! end       0x00, u64 BE pair count
//! checksum  32 bytes: sha256 of every byte before it
//! ```

use std::io::{self, Read, Write};

use bytes::Bytes;

use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, StoredMembershipOf};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::{sha256, sha256_hex};
use crate::proto::{MAX_PLUGIN_BYTES, PluginRegistry, TypeConfig};
use crate::raft::SnapshotFormatError;

/// The first seven bytes of every snapshot.
pub(crate) const MAGIC: [u8; 7] = *b"IRSNAP\0";
/// The format version this build writes and reads (the eighth byte).
pub(crate) const FORMAT_VERSION: u8 = 3;
/// The largest header accepted.
pub(crate) const MAX_HEADER_BYTES: u32 = 1 << 20;
/// The largest key accepted: fjall stores keys of at most `u16::MAX` bytes, and panics on a
/// longer one (or an empty one), so a snapshot or backup image may not carry either.
pub(crate) const MAX_KEY_BYTES: u32 = u16::MAX as u32;

/// A key and its value.
pub(crate) type Pair = (Vec<u8>, Vec<u8>);

const TAG_END: u8 = 0x00;
const TAG_PAIR: u8 = 0x01;

/// What a snapshot says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    /// The last log id the snapshot includes.
    pub(crate) last_log_id: Option<LogIdOf<TypeConfig>>,
    /// The last membership the snapshot includes.
    pub(crate) last_membership: StoredMembershipOf<TypeConfig>,
    /// The name of the state machine whose keyspace this is.
    pub(crate) plugin: String,
    /// sha256 of the plugin that produced the data.
    pub(crate) plugin_sha256: [u8; 32],
    /// The cluster configuration in effect at `last_log_id`.
    pub(crate) config: crate::proto::ClusterConfig,
    /// The active plugins, rollback targets and history at `last_log_id`; the bytes of every
    /// plugin it references follow the header.
    pub(crate) plugins: PluginRegistry,
    /// The client sessions at `last_log_id` (bounded well under the header limit).
    pub(crate) sessions: crate::raft::apply::sessions::Sessions,
}

impl SnapshotHeader {
    /// openraft's view of the header.
    pub(crate) fn meta(&self) -> SnapshotMetaOf<TypeConfig> {
        SnapshotMetaOf::<TypeConfig> {
            last_log_id: self.last_log_id,
            last_membership: self.last_membership.clone(),
        }
    }

    /// Whether this header describes the snapshot `meta` names.
    pub(crate) fn matches(&self, meta: &SnapshotMetaOf<TypeConfig>) -> bool {
        self.last_log_id == meta.last_log_id && self.last_membership == meta.last_membership
    }
}

/// Writes a snapshot to `W`.
pub(crate) struct SnapshotWriter<W: Write> {
    out: W,
    hasher: Sha256,
    pairs: u64,
    last_key: Option<Vec<u8>>,
}

impl<W: Write> SnapshotWriter<W> {
    /// Writes the magic, `header` and `plugins`: the bytes of every hash the header's registry
    /// references, in ascending hash order.
    pub(crate) fn new(
        out: W,
        header: &SnapshotHeader,
        plugins: &[Bytes],
    ) -> Result<Self, SnapshotFormatError> {
        let expected: Vec<[u8; 32]> = header.plugins.referenced().into_iter().collect();
        let given: Vec<[u8; 32]> = plugins.iter().map(|wasm| sha256(wasm)).collect();
        if expected != given {
            return Err(SnapshotFormatError::Plugins {
                reason: format!(
                    "the registry references {} plugins but {} other ones were given",
                    expected.len(),
                    given.len()
                ),
            });
        }
        let body = postcard::to_allocvec(header).map_err(|e| SnapshotFormatError::Header {
            reason: e.to_string(),
        })?;
        let len = u32::try_from(body.len())
            .ok()
            .filter(|len| *len <= MAX_HEADER_BYTES)
            .ok_or(SnapshotFormatError::HeaderTooLarge {
                len: u32::try_from(body.len()).unwrap_or(u32::MAX),
                max: MAX_HEADER_BYTES,
            })?;
        let mut writer = Self {
            out,
            hasher: Sha256::new(),
            pairs: 0,
            last_key: None,
        };
        writer.write(&MAGIC)?;
        writer.write(&[FORMAT_VERSION])?;
        writer.write(&len.to_be_bytes())?;
        writer.write(&body)?;
        for wasm in plugins {
            let len = u32::try_from(wasm.len())
                .ok()
                .filter(|len| *len as usize <= MAX_PLUGIN_BYTES)
                .ok_or_else(|| SnapshotFormatError::Plugins {
                    reason: format!("a plugin of {} bytes is over the limit", wasm.len()),
                })?;
            writer.write(&len.to_be_bytes())?;
            writer.write(wasm)?;
        }
        Ok(writer)
    }

    /// Writes one pair; keys must come in strictly ascending order.
    pub(crate) fn pair(&mut self, key: &[u8], value: &[u8]) -> Result<(), SnapshotFormatError> {
        let key_len = u32::try_from(key.len())
            .ok()
            .filter(|len| *len <= MAX_KEY_BYTES)
            .ok_or(SnapshotFormatError::KeyTooLarge {
                len: u32::try_from(key.len()).unwrap_or(u32::MAX),
                max: MAX_KEY_BYTES,
            })?;
        let value_len =
            u32::try_from(value.len()).map_err(|_| SnapshotFormatError::ValueTooLarge {
                len: value.len() as u64,
                max: u32::MAX,
            })?;
        if key.is_empty() {
            return Err(SnapshotFormatError::EmptyKey {
                position: self.pairs,
            });
        }
        if self.last_key.as_deref().is_some_and(|last| key <= last) {
            return Err(SnapshotFormatError::OutOfOrder {
                position: self.pairs,
            });
        }
        self.write(&[TAG_PAIR])?;
        self.write(&key_len.to_be_bytes())?;
        self.write(key)?;
        self.write(&value_len.to_be_bytes())?;
        self.write(value)?;
        let last = self.last_key.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(key);
        self.pairs += 1;
        Ok(())
    }

    /// Writes the end frame and the checksum; returns the output and the checksum.
    pub(crate) fn finish(mut self) -> Result<(W, [u8; 32]), SnapshotFormatError> {
        self.write(&[TAG_END])?;
        self.write(&self.pairs.to_be_bytes())?;
        let digest: [u8; 32] = self.hasher.finalize_reset().into();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        Ok((self.out, digest))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SnapshotFormatError> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)?;
        Ok(())
    }
}

/// Reads a snapshot from `R`, verifying it as it goes. The pairs it yields are only trustworthy
/// once [`Self::next_pair`] has returned `Ok(None)` (the checksum matched): consume them into
/// something that can be thrown away.
pub(crate) struct SnapshotReader<R: Read> {
    input: R,
    hasher: Sha256,
    pairs: u64,
    last_key: Option<Vec<u8>>,
    digest: Option<[u8; 32]>,
    plugins: Vec<Bytes>,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads the magic and the header.
    pub(crate) fn open(input: R) -> Result<(Self, SnapshotHeader), SnapshotFormatError> {
        let mut reader = Self {
            input,
            hasher: Sha256::new(),
            pairs: 0,
            last_key: None,
            digest: None,
            plugins: Vec::new(),
        };
        let magic: [u8; 8] = reader.read_array()?;
        if magic[..7] != MAGIC {
            return Err(SnapshotFormatError::BadMagic);
        }
        if magic[7] != FORMAT_VERSION {
            return Err(SnapshotFormatError::UnsupportedVersion {
                found: magic[7],
                supported: FORMAT_VERSION,
            });
        }
        let len = u32::from_be_bytes(reader.read_array()?);
        if len > MAX_HEADER_BYTES {
            return Err(SnapshotFormatError::HeaderTooLarge {
                len,
                max: MAX_HEADER_BYTES,
            });
        }
        let body = reader.read_vec(len)?;
        let malformed = |reason: String| SnapshotFormatError::Header { reason };
        let (header, rest) =
            postcard::take_from_bytes(&body).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed(format!("{} bytes after the header", rest.len())));
        }
        let header: SnapshotHeader = header;
        for hash in header.plugins.referenced() {
            let len = u32::from_be_bytes(reader.read_array()?);
            if len as usize > MAX_PLUGIN_BYTES {
                return Err(SnapshotFormatError::Plugins {
                    reason: format!(
                        "plugin {} of {len} bytes is over the limit of {MAX_PLUGIN_BYTES}",
                        sha256_hex(&hash)
                    ),
                });
            }
            let wasm = reader.read_vec(len)?;
            if sha256(&wasm) != hash {
                return Err(SnapshotFormatError::Plugins {
                    reason: format!("the bytes of plugin {} hash differently", sha256_hex(&hash)),
                });
            }
            reader.plugins.push(Bytes::from(wasm));
        }
        Ok((reader, header))
    }

    /// The next pair, or `None` at the end once the trailer and checksum verified.
    pub(crate) fn next_pair(&mut self) -> Result<Option<Pair>, SnapshotFormatError> {
        if self.digest.is_some() {
            return Ok(None);
        }
        let [tag] = self.read_array()?;
        match tag {
            TAG_PAIR => {
                let key_len = u32::from_be_bytes(self.read_array()?);
                if key_len == 0 {
                    return Err(SnapshotFormatError::EmptyKey {
                        position: self.pairs,
                    });
                }
                if key_len > MAX_KEY_BYTES {
                    return Err(SnapshotFormatError::KeyTooLarge {
                        len: key_len,
                        max: MAX_KEY_BYTES,
                    });
                }
                let key = self.read_vec(key_len)?;
                if self
                    .last_key
                    .as_deref()
                    .is_some_and(|last| key.as_slice() <= last)
                {
                    return Err(SnapshotFormatError::OutOfOrder {
                        position: self.pairs,
                    });
                }
                let value_len = u32::from_be_bytes(self.read_array()?);
                let value = self.read_vec(value_len)?;
                let last = self.last_key.get_or_insert_with(Vec::new);
                last.clear();
                last.extend_from_slice(&key);
                self.pairs += 1;
                Ok(Some((key, value)))
            }
            TAG_END => {
                let expected = u64::from_be_bytes(self.read_array()?);
                let digest: [u8; 32] = self.hasher.finalize_reset().into();
                let mut stored = [0u8; 32];
                self.input.read_exact(&mut stored)?;
                if stored != digest {
                    return Err(SnapshotFormatError::Checksum);
                }
                if expected != self.pairs {
                    return Err(SnapshotFormatError::PairCount {
                        expected,
                        found: self.pairs,
                    });
                }
                if !at_end(&mut self.input)? {
                    return Err(SnapshotFormatError::TrailingBytes);
                }
                self.digest = Some(digest);
                Ok(None)
            }
            tag => Err(SnapshotFormatError::UnknownFrame { tag }),
        }
    }

    /// Reads to the end, verifying everything; returns the number of pairs and the checksum.
    pub(crate) fn verify(mut self) -> Result<(u64, [u8; 32]), SnapshotFormatError> {
        while self.next_pair()?.is_some() {}
        Ok((self.pairs, self.digest.unwrap_or_default()))
    }

    /// The bytes of the plugins the header's registry references, in ascending hash order. Like
    /// the pairs, trustworthy only once the checksum verified.
    pub(crate) fn plugins(&self) -> &[Bytes] {
        &self.plugins
    }

    /// The checksum, once the end was reached and verified.
    pub(crate) fn digest(&self) -> Option<[u8; 32]> {
        self.digest
    }

    /// The input, positioned wherever reading stopped.
    pub(crate) fn into_inner(self) -> R {
        self.input
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotFormatError> {
        let mut bytes = [0u8; N];
        self.input.read_exact(&mut bytes)?;
        self.hasher.update(bytes);
        Ok(bytes)
    }

    /// Reads `len` bytes without trusting `len` for an allocation up front: memory grows only as
    /// bytes arrive, so a garbage length in a short stream fails at its end instead of reserving
    /// gigabytes.
    fn read_vec(&mut self, len: u32) -> Result<Vec<u8>, SnapshotFormatError> {
        const STEP: usize = 64 << 10;
        let len = len as usize;
        let mut bytes = Vec::with_capacity(len.min(STEP));
        while bytes.len() < len {
            let start = bytes.len();
            bytes.resize(start + (len - start).min(STEP), 0);
            self.input.read_exact(&mut bytes[start..])?;
        }
        self.hasher.update(&bytes);
        Ok(bytes)
    }
}

fn at_end(input: &mut impl Read) -> Result<bool, SnapshotFormatError> {
    let mut probe = [0u8; 1];
    loop {
        match input.read(&mut probe) {
            Ok(0) => return Ok(true),
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
