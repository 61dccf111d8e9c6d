//! The snapshot reader: any bytes offered as a snapshot image are summarised or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = iroh_raft::inspect_image(data);
});
