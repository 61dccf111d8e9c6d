//! [`verify_snapshot`]: checks a received snapshot file before it is handed to openraft, whose
//! `install_snapshot` treats any failure as fatal.

use std::io::{BufReader, Seek, SeekFrom};

use tokio::io::AsyncSeekExt;

use openraft::type_config::alias::SnapshotMetaOf;

use crate::proto::TypeConfig;
use crate::raft::snapshot::format::SnapshotReader;
use crate::raft::{RaftStorageError, SnapshotFormatError};

/// Reads the whole snapshot in `file` from its start, checking its framing, key order and
/// checksum, and returns the metadata it carries. The file is left rewound.
pub async fn verify_snapshot(
    file: &mut tokio::fs::File,
) -> Result<SnapshotMetaOf<TypeConfig>, RaftStorageError> {
    let std_file = file
        .try_clone()
        .await
        .map_err(|e| RaftStorageError::from(SnapshotFormatError::from(e)))?
        .into_std()
        .await;
    let meta = tokio::task::spawn_blocking(move || {
        let mut std_file = std_file;
        std_file
            .seek(SeekFrom::Start(0))
            .map_err(SnapshotFormatError::from)?;
        let (reader, header) = SnapshotReader::open(BufReader::new(&std_file))?;
        reader.verify()?;
        Ok::<_, SnapshotFormatError>(header.meta())
    })
    .await
    .map_err(RaftStorageError::from)??;
    // The clone shares the file offset: rewind through `file` so that its own buffer resets too.
    file.seek(SeekFrom::Start(0))
        .await
        .map_err(|e| RaftStorageError::from(SnapshotFormatError::from(e)))?;
    Ok(meta)
}
