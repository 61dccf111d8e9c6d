//! sha256, the identity of a plugin's bytes everywhere: uploads, log entries, blobs, snapshots.

use sha2::{Digest, Sha256};

/// Lowercase hex of a sha256.
pub fn sha256_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

/// sha256 of `bytes`: how plugins are identified.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
