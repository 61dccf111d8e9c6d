//! The packed batch format shared with the host: entries as lengths plus one contiguous buffer.
//! A pure function, so the format is tested natively.

/// Splits a packed batch into its entries. Lengths that overrun the buffer end the iteration early;
/// the host never produces them.
pub fn entries<'a>(lens: &'a [u32], payloads: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = payloads;
    lens.iter().map_while(move |&len| {
        let len = len as usize;
        if len > rest.len() {
            return None;
        }
        let (entry, tail) = rest.split_at(len);
        rest = tail;
        Some(entry)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_back_to_back() {
        let got: Vec<&[u8]> = entries(&[2, 0, 3], b"abcde").collect();
        assert_eq!(got, vec![&b"ab"[..], &b""[..], &b"cde"[..]]);
    }

    proptest::proptest! {
        /// Any lengths split the buffer into entries of those lengths, back to back, stopping
        /// only at the first length that overruns it (the fuzz target `packed_batch` runs the
        /// same property far longer).
        #[test]
        fn entries_lie_back_to_back_inside_the_buffer(
            lens in proptest::collection::vec(0u32..96, 0..16),
            payloads in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let got: Vec<&[u8]> = entries(&lens, &payloads).collect();
            let mut offset = 0;
            for (entry, len) in got.iter().zip(&lens) {
                proptest::prop_assert_eq!(entry.len(), *len as usize);
                proptest::prop_assert_eq!(*entry, &payloads[offset..offset + entry.len()]);
                offset += entry.len();
            }
            if got.len() < lens.len() {
                proptest::prop_assert!(lens[got.len()] as usize > payloads.len() - offset);
            }
        }
    }

    #[test]
    fn entries_stop_at_an_overrun_instead_of_panicking() {
        let got: Vec<&[u8]> = entries(&[2, 9, 1], b"abcde").collect();
        assert_eq!(got, vec![&b"ab"[..]]);
    }
}
