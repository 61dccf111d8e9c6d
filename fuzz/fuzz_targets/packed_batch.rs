//! The packed batch a plugin receives (entry lengths plus one buffer): any lengths split the
//! buffer into entries that lie inside it, in order, or end early.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count).min(rest.len() / 4);
    let (lens, payloads) = rest.split_at(count * 4);
    let lens: Vec<u32> = lens
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut total = 0usize;
    let mut seen = 0;
    for (entry, len) in iroh_raft_plugin_api::batch::entries(&lens, payloads).zip(&lens) {
        assert_eq!(entry.len(), *len as usize);
        assert_eq!(entry, &payloads[total..total + entry.len()]);
        total += entry.len();
        seen += 1;
    }
    assert!(total <= payloads.len());
    if seen < lens.len() {
        assert!(
            lens[seen] as usize > payloads.len() - total,
            "it stopped early without cause"
        );
    }
});
