//! The plugin upload reassembly: chunks of any sizes, some of another request, against an
//! announced size and hash. The upload yields exactly the accepted chunks in order, and only when
//! they have the announced size and hash; a size over the limit is refused before any allocation.
#![no_main]

use iroh_raft::net::Upload;
use iroh_raft::proto::MAX_PLUGIN_BYTES;
use iroh_raft::sha256;
use libfuzzer_sys::fuzz_target;

const ID: [u8; 16] = [1; 16];
const OTHER: [u8; 16] = [2; 16];

fuzz_target!(|data: &[u8]| {
    let Some((&[low, high, flags], mut rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    if flags & 2 != 0 {
        let over = MAX_PLUGIN_BYTES as u64 + 1 + u64::from(u16::from_le_bytes([low, high]));
        assert!(Upload::start(ID, over, [0; 32]).is_err());
        return;
    }
    let size = u64::from(u16::from_le_bytes([low, high]) % 4096);
    // Chunks: a head byte (high bit: another request's chunk; the rest: the length), then bytes.
    let mut chunks = Vec::new();
    while let Some((&head, tail)) = rest.split_first() {
        let len = usize::from(head & 0x7f).min(tail.len());
        chunks.push((head & 0x80 != 0, &tail[..len]));
        rest = &tail[len..];
    }
    let ours: Vec<u8> = chunks
        .iter()
        .filter(|(other, _)| !other)
        .flat_map(|(_, bytes)| bytes.iter().copied())
        .take(size as usize)
        .collect();
    // The announced hash: the one of what the client means to send, or a damaged one.
    let hash = if flags & 1 == 0 {
        sha256(&ours)
    } else {
        [0xab; 32]
    };
    let mut upload = Upload::start(ID, size, hash).expect("a size under the limit starts");
    let mut accepted = Vec::new();
    for (other, bytes) in chunks {
        let id = if other { OTHER } else { ID };
        if upload.push(id, bytes).is_ok() {
            assert!(!other, "a chunk of another request was taken");
            accepted.extend_from_slice(bytes);
        }
        assert!(
            accepted.len() as u64 <= size,
            "more than the announced size"
        );
    }
    let complete = accepted.len() as u64 == size;
    assert_eq!(upload.is_complete(), complete);
    match upload.finish() {
        Ok(bytes) => {
            assert_eq!(&bytes[..], &accepted[..]);
            assert_eq!(sha256(&accepted), hash);
        }
        Err(_) => assert!(!complete || sha256(&accepted) != hash),
    }
});
