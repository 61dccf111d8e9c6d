//! The packed batch format shared with the host: entries as lengths plus one contiguous buffer,
//! and per-entry outcomes packed the same way. Pure functions, so the format is tested natively.

use alloc::string::String;
use alloc::vec::Vec;

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

/// Per-entry outcomes, packed: output lengths, the positions of failed entries, and the outputs
/// back to back (a failed entry's output is its UTF-8 error message).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackedResults {
    /// Output length per entry.
    pub lens: Vec<u32>,
    /// Positions of the failed entries, ascending.
    pub failed: Vec<u32>,
    /// All outputs, back to back.
    pub data: Vec<u8>,
}

impl PackedResults {
    /// An empty result set with room for `entries` outcomes.
    pub fn with_capacity(entries: usize) -> Self {
        Self {
            lens: Vec::with_capacity(entries),
            failed: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Appends the outcome of the next entry.
    pub fn push(&mut self, outcome: core::result::Result<&[u8], &str>) {
        let bytes = match outcome {
            Ok(output) => output,
            Err(message) => {
                self.failed.push(self.lens.len() as u32);
                message.as_bytes()
            }
        };
        self.lens.push(bytes.len() as u32);
        self.data.extend_from_slice(bytes);
    }

    /// Unpacks the outcomes again (what the host does).
    pub fn outcomes(&self) -> Vec<core::result::Result<Vec<u8>, String>> {
        let mut failed = self.failed.iter().peekable();
        entries(&self.lens, &self.data)
            .enumerate()
            .map(|(position, bytes)| {
                if failed.peek() == Some(&&(position as u32)) {
                    failed.next();
                    Err(String::from_utf8_lossy(bytes).into_owned())
                } else {
                    Ok(bytes.to_vec())
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_back_to_back() {
        let got: Vec<&[u8]> = entries(&[2, 0, 3], b"abcde").collect();
        assert_eq!(got, vec![&b"ab"[..], &b""[..], &b"cde"[..]]);
    }

    #[test]
    fn entries_stop_at_an_overrun_instead_of_panicking() {
        let got: Vec<&[u8]> = entries(&[2, 9, 1], b"abcde").collect();
        assert_eq!(got, vec![&b"ab"[..]]);
    }

    #[test]
    fn results_round_trip_with_failures() {
        let mut packed = PackedResults::with_capacity(3);
        packed.push(Ok(b"one"));
        packed.push(Err("bad command"));
        packed.push(Ok(b""));
        assert_eq!(packed.lens, vec![3, 11, 0]);
        assert_eq!(packed.failed, vec![1]);
        assert_eq!(
            packed.outcomes(),
            vec![
                Ok(b"one".to_vec()),
                Err("bad command".into()),
                Ok(Vec::new())
            ]
        );
    }
}
