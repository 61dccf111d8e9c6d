//! Padding a component to a given size with a custom section: the deploy bench's distinct
//! components of each size. The cluster tests include this file too (`#[path]`), so there is one
//! definition. Pure: no imports, no I/O.

/// `wasm` with a custom section appended so that the result is `size` bytes long (or `wasm`
/// plus a minimal section if it is already that large). `seed` goes into the section, so equal
/// sizes with different seeds hash differently. Custom sections do not change what a component
/// does.
pub(crate) fn padded_component(wasm: &[u8], size: usize, seed: u64) -> Vec<u8> {
    const NAME: &[u8] = b"iroh-raft-bench-padding";
    let mut out = wasm.to_vec();
    // section id, LEB128 section length, LEB128 name length, name, payload
    let fixed = 1 + 5 + 1 + NAME.len() + 8;
    let payload = size.saturating_sub(wasm.len() + fixed);
    let body_len = 1 + NAME.len() + 8 + payload;
    out.push(0);
    // Fixed five-byte LEB128 so the total size is exact.
    let mut len = body_len as u32;
    for i in 0..5 {
        let mut byte = (len & 0x7f) as u8;
        len >>= 7;
        if i < 4 {
            byte |= 0x80;
        }
        out.push(byte);
    }
    out.push(NAME.len() as u8);
    out.extend_from_slice(NAME);
    out.extend_from_slice(&seed.to_be_bytes());
    out.resize(out.len() + payload, 0xa5);
    out
}
