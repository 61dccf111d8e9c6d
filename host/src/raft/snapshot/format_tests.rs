//! Property tests of the snapshot framing: round trips, and every kind of damage is an error.

use std::collections::{BTreeMap, BTreeSet};

use openraft::vote::RaftLeaderIdExt;
use openraft::{Membership, StoredMembership};
use proptest::prelude::*;

use super::*;
use crate::proto::{ActivationCause, PluginRecord};

type LeaderId = openraft::type_config::alias::LeaderIdOf<TypeConfig>;

/// Plugin bytes a snapshot may carry; headers reference some of them.
fn candidate_plugins() -> Vec<Bytes> {
    (0..6u8)
        .map(|n| Bytes::from(vec![n; 10 + 50 * n as usize]))
        .collect()
}

/// A registry that activated the candidates at `picks`, in order.
fn registry(picks: &[usize]) -> PluginRegistry {
    let candidates = candidate_plugins();
    let mut registry = PluginRegistry::default();
    for (index, &pick) in picks.iter().enumerate() {
        let record = PluginRecord {
            sha256: sha256(&candidates[pick]),
            version: format!("v{pick}"),
            index: index as u64 + 1,
            size: candidates[pick].len() as u64,
            config: Bytes::new(),
        };
        registry.activate(
            crate::proto::PluginKind::ALL[pick % 3],
            record,
            ActivationCause::Deploy,
            None,
        );
    }
    registry
}

/// The bytes of every plugin `header` references, in hash order.
fn plugins_of(header: &SnapshotHeader) -> Vec<Bytes> {
    let candidates = candidate_plugins();
    header
        .plugins
        .referenced()
        .into_iter()
        .map(|hash| {
            candidates
                .iter()
                .find(|c| sha256(c) == hash)
                .cloned()
                .unwrap()
        })
        .collect()
}

fn header() -> impl Strategy<Value = SnapshotHeader> {
    (
        proptest::option::of((any::<u64>(), any::<u64>(), any::<u64>())),
        proptest::collection::btree_set(0u64..16, 1..4),
        "[a-z]{0,12}",
        any::<[u8; 32]>(),
        proptest::collection::vec(0usize..6, 0..4),
    )
        .prop_map(|(last, voters, plugin, plugin_sha256, picks)| {
            let last_log_id = last.map(|(term, node, index)| {
                LogIdOf::<TypeConfig>::new(LeaderId::new_committed(term, node), index)
            });
            SnapshotHeader {
                last_membership: StoredMembership::new(
                    last_log_id,
                    Membership::new_with_defaults(vec![voters], BTreeSet::new()),
                ),
                last_log_id,
                plugin,
                plugin_sha256,
                config: Default::default(),
                plugins: registry(&picks),
                sessions: Default::default(),
            }
        })
}

fn pairs() -> impl Strategy<Value = BTreeMap<Vec<u8>, Vec<u8>>> {
    proptest::collection::btree_map(
        proptest::collection::vec(any::<u8>(), 1..24),
        proptest::collection::vec(any::<u8>(), 0..64),
        0..24,
    )
}

fn write(header: &SnapshotHeader, pairs: &BTreeMap<Vec<u8>, Vec<u8>>) -> (Vec<u8>, [u8; 32]) {
    let mut writer = SnapshotWriter::new(Vec::new(), header, &plugins_of(header)).unwrap();
    for (key, value) in pairs {
        writer.pair(key, value).unwrap();
    }
    writer.finish().unwrap()
}

type Read = (SnapshotHeader, Vec<(Vec<u8>, Vec<u8>)>, [u8; 32]);

fn read(bytes: &[u8]) -> Result<Read, SnapshotFormatError> {
    read_with_plugins(bytes).map(|(read, _)| read)
}

fn read_with_plugins(bytes: &[u8]) -> Result<(Read, Vec<Bytes>), SnapshotFormatError> {
    let (mut reader, header) = SnapshotReader::open(bytes)?;
    let mut pairs = Vec::new();
    while let Some(pair) = reader.next_pair()? {
        pairs.push(pair);
    }
    let digest = reader.digest().ok_or(SnapshotFormatError::Truncated)?;
    let plugins = reader.plugins().to_vec();
    Ok(((header, pairs, digest), plugins))
}

proptest! {
    #[test]
    fn snapshots_round_trip(header in header(), pairs in pairs()) {
        let (bytes, digest) = write(&header, &pairs);
        let (back, read_pairs, read_digest) = read(&bytes).unwrap();
        prop_assert_eq!(back, header);
        prop_assert_eq!(read_digest, digest);
        let (count, verified) = SnapshotReader::open(&bytes[..]).unwrap().0.verify().unwrap();
        prop_assert_eq!(verified, digest);
        prop_assert_eq!(count as usize, pairs.len());
        prop_assert_eq!(read_pairs, pairs.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn the_plugins_the_registry_references_travel_with_the_snapshot(header in header(), pairs in pairs()) {
        let (bytes, _) = write(&header, &pairs);
        let (_, plugins) = read_with_plugins(&bytes).unwrap();
        prop_assert_eq!(plugins, plugins_of(&header));
    }

    #[test]
    fn every_truncation_is_an_error(header in header(), pairs in pairs(), cut in any::<prop::sample::Index>()) {
        let (bytes, _) = write(&header, &pairs);
        let cut = cut.index(bytes.len());
        prop_assert!(read(&bytes[..cut]).is_err());
    }

    #[test]
    fn every_flipped_byte_is_an_error(header in header(), pairs in pairs(), at in any::<prop::sample::Index>(), flip in 1u8..) {
        let (mut bytes, _) = write(&header, &pairs);
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        prop_assert!(read(&bytes).is_err());
    }

    #[test]
    fn trailing_bytes_are_an_error(header in header(), pairs in pairs(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let (mut bytes, _) = write(&header, &pairs);
        bytes.extend_from_slice(&extra);
        prop_assert!(matches!(read(&bytes), Err(SnapshotFormatError::TrailingBytes)));
    }

    /// Garbage never panics the reader, with or without a valid magic in front.
    #[test]
    fn garbage_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(read(&garbage).is_err());
        let mut framed = MAGIC.to_vec();
        framed.push(FORMAT_VERSION);
        framed.extend_from_slice(&garbage);
        prop_assert!(read(&framed).is_err());
    }

    /// Garbage frames after a valid header never panic the reader either.
    #[test]
    fn garbage_frames_never_panic(header in header(), garbage in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (bytes, _) = write(&header, &BTreeMap::new());
        // Magic, version, length, header and plugins: everything before the end frame.
        let mut framed = bytes[..bytes.len() - 1 - 8 - 32].to_vec();
        framed.extend_from_slice(&garbage);
        prop_assert!(read(&framed).is_err());
    }
}

/// A header with nothing applied and no plugins, for a state machine with `plugin_sha256`.
fn bare_header(plugin_sha256: [u8; 32]) -> SnapshotHeader {
    SnapshotHeader {
        last_log_id: None,
        last_membership: StoredMembership::default(),
        plugin: "kv".into(),
        plugin_sha256,
        config: Default::default(),
        plugins: Default::default(),
        sessions: Default::default(),
    }
}

#[test]
fn the_writer_refuses_plugins_the_registry_does_not_reference() {
    let header = SnapshotHeader {
        last_log_id: None,
        last_membership: StoredMembership::default(),
        plugin: "kv".into(),
        plugin_sha256: [0; 32],
        config: Default::default(),
        plugins: registry(&[1, 2]),
        sessions: Default::default(),
    };
    let candidates = candidate_plugins();
    for wrong in [
        vec![],
        vec![candidates[1].clone()],
        vec![candidates[3].clone(), candidates[4].clone()],
    ] {
        assert!(matches!(
            SnapshotWriter::new(Vec::new(), &header, &wrong),
            Err(SnapshotFormatError::Plugins { .. })
        ));
    }
    assert!(SnapshotWriter::new(Vec::new(), &header, &plugins_of(&header)).is_ok());
}

#[test]
fn the_writer_refuses_keys_out_of_order() {
    let header = bare_header([0; 32]);
    let mut writer = SnapshotWriter::new(Vec::new(), &header, &[]).unwrap();
    writer.pair(b"b", b"1").unwrap();
    assert!(matches!(
        writer.pair(b"a", b"2"),
        Err(SnapshotFormatError::OutOfOrder { position: 1 })
    ));
    assert!(matches!(
        writer.pair(b"b", b"2"),
        Err(SnapshotFormatError::OutOfOrder { position: 1 })
    ));
    let long_key = vec![0u8; MAX_KEY_BYTES as usize + 1];
    assert!(matches!(
        writer.pair(&long_key, b""),
        Err(SnapshotFormatError::KeyTooLarge { .. })
    ));
    assert!(matches!(
        writer.pair(b"", b""),
        Err(SnapshotFormatError::EmptyKey { position: 1 })
    ));
}

/// Bug (found in review): a backup image with an empty key, or one of 65,536 bytes, passed the
/// reader, and fjall panicked on it while every replica applied the restore.
#[test]
fn bug_an_image_with_a_key_fjall_cannot_store_is_refused_by_the_reader() {
    let header = bare_header([7; 32]);
    for key_len in [0usize, MAX_KEY_BYTES as usize + 1] {
        // Framed by hand, as a hostile handler would: the writer refuses such keys.
        let mut pairs = BTreeMap::new();
        pairs.insert(vec![b'x'; 3], b"v".to_vec());
        let (good, _) = write(&header, &pairs);
        let body_end = good.len() - 32 - 9;
        let mut bytes = good[..body_end].to_vec();
        let pair_start = bytes.len() - (1 + 4 + 3 + 4 + 1);
        bytes.truncate(pair_start);
        bytes.push(0x01);
        bytes.extend_from_slice(&(key_len as u32).to_be_bytes());
        bytes.extend_from_slice(&vec![b'k'; key_len]);
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.push(b'v');
        bytes.push(0x00);
        bytes.extend_from_slice(&1u64.to_be_bytes());
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        bytes.extend_from_slice(&digest);
        let error = read(&bytes).unwrap_err();
        assert!(
            matches!(
                error,
                SnapshotFormatError::EmptyKey { .. } | SnapshotFormatError::KeyTooLarge { .. }
            ),
            "{key_len}: {error}"
        );
    }
}

#[test]
fn damaged_lengths_and_versions_are_named() {
    let header = bare_header([7; 32]);
    let mut pairs = BTreeMap::new();
    pairs.insert(b"k".to_vec(), b"v".to_vec());
    let (bytes, _) = write(&header, &pairs);

    let mut version = bytes.clone();
    version[7] = 9;
    assert!(matches!(
        read(&version),
        Err(SnapshotFormatError::UnsupportedVersion { found: 9, .. })
    ));

    let mut huge_header = bytes.clone();
    huge_header[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        read(&huge_header),
        Err(SnapshotFormatError::HeaderTooLarge { .. })
    ));

    let header_len = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let first_pair = 12 + header_len;
    let mut huge_key = bytes.clone();
    huge_key[first_pair + 1..first_pair + 5].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        read(&huge_key),
        Err(SnapshotFormatError::KeyTooLarge { .. })
    ));

    // A value length of 4 GiB in a tiny file fails at the end of the file without reserving it.
    let value_len_at = first_pair + 1 + 4 + 1;
    let mut huge_value = bytes.clone();
    huge_value[value_len_at..value_len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        read(&huge_value),
        Err(SnapshotFormatError::Truncated)
    ));

    let mut tag = bytes;
    tag[first_pair] = 0x7f;
    assert!(matches!(
        read(&tag),
        Err(SnapshotFormatError::UnknownFrame { tag: 0x7f })
    ));
}
