//! [`inspect_image`]: what a snapshot or backup image holds, read and verified from its bytes —
//! for `iroh-raft backup inspect` and the offline restore.

use std::io::Read;

use serde::Serialize;

use crate::hash::sha256_hex;
use crate::proto::{PluginKind, PluginRecord};
use crate::raft::apply::restore::image_state_hash;
use crate::raft::snapshot::format::SnapshotReader;
use crate::raft::{RaftStorageError, SnapshotFormatError};

/// A verified image, summarized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// The applied index the image holds the state at (0: nothing applied).
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The voters and learners of the membership it holds.
    pub voters: Vec<u64>,
    /// Learners of that membership.
    pub learners: Vec<u64>,
    /// The cluster configuration version.
    pub config_version: u64,
    /// Hex sha256 of the state machine whose data it is.
    pub state_machine: String,
    /// The active plugin of each kind: kind, hex sha256, version.
    pub plugins: Vec<(String, String, String)>,
    /// Key-value pairs.
    pub pairs: u64,
    /// Hex state hash at `index` (what `GetStateHash` answered there).
    pub state_hash: String,
    /// Hex of the image's own checksum.
    pub checksum: String,
}

fn describe(kind: PluginKind, record: &PluginRecord) -> (String, String, String) {
    (
        kind.to_string(),
        sha256_hex(&record.sha256),
        record.version.clone(),
    )
}

/// Reads and verifies the whole image in `bytes` (framing, key order, checksum) and summarizes
/// it; an image that does not verify is an error saying why.
pub fn inspect_image(bytes: &[u8]) -> Result<ImageSummary, RaftStorageError> {
    let (pairs, checksum) = checked(bytes)?;
    let (_, header) = SnapshotReader::open(bytes)?;
    let state_hash = image_state_hash(bytes)?;
    let membership = header.last_membership.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let learners: Vec<u64> = membership.learner_ids().collect();
    let plugins = PluginKind::ALL
        .into_iter()
        .filter_map(|kind| {
            header
                .plugins
                .active(kind)
                .map(|record| describe(kind, record))
        })
        .collect();
    Ok(ImageSummary {
        index: header.last_log_id.map_or(0, |id| id.index),
        term: header.last_log_id.map_or(0, |id| id.leader_id.term),
        voters,
        learners,
        config_version: header.config.version,
        state_machine: sha256_hex(&header.plugin_sha256),
        plugins,
        pairs,
        state_hash: sha256_hex(&state_hash),
        checksum: hex::encode(checksum),
    })
}

/// The plugin bytes `image` carries (every plugin its registry references). Trust them only once
/// [`inspect_image`] verified the image.
pub(crate) fn plugin_bytes(image: &[u8]) -> Result<Vec<bytes::Bytes>, RaftStorageError> {
    let (reader, _) = SnapshotReader::open(image)?;
    Ok(reader.plugins().to_vec())
}

fn checked(input: impl Read) -> Result<(u64, [u8; 32]), SnapshotFormatError> {
    let (reader, _) = SnapshotReader::open(input)?;
    reader.verify()
}
