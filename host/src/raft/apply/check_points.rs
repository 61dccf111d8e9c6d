//! Where an apply call must commit so that the state at every consistency check point is
//! committed on its own: [`is_check_point`] and [`split_at_check_points`], pure and unit-tested.
//!
//! A check point is an applied index that is a multiple of the replicated `check_every`. Every
//! replica applies the same log under the same configuration, so every replica commits (and
//! captures) exactly the state after that index, however openraft grouped entries into apply
//! calls. The interval is the one in effect when the entry at the index is applied: the caller
//! asks with the configuration of the moment, which a configuration entry changes in log order.

use std::ops::Range;

/// Whether applied index `index` is a check point when checking every `every` entries (0: never).
pub(crate) fn is_check_point(index: u64, every: u64) -> bool {
    every != 0 && index != 0 && index.is_multiple_of(every)
}

/// Splits `len` entries at consecutive log indexes from `first` into pieces (positions, in order,
/// covering every entry once) such that each check point is the last entry of a piece.
pub(crate) fn split_at_check_points(first: u64, len: usize, every: u64) -> Vec<Range<usize>> {
    if len == 0 {
        return Vec::new();
    }
    if every == 0 {
        return std::iter::once(0..len).collect();
    }
    let mut pieces = Vec::new();
    let mut start = 0usize;
    // Position of the first check point at or after `first` (index 0 is never one).
    let first_check = first.max(1).div_ceil(every).saturating_mul(every);
    let mut position = first_check.saturating_sub(first);
    let step = usize::try_from(every).unwrap_or(usize::MAX);
    while let Ok(at) = usize::try_from(position) {
        if at >= len {
            break;
        }
        pieces.push(start..at + 1);
        start = at + 1;
        match at.checked_add(step) {
            Some(next) => position = next as u64,
            None => break,
        }
    }
    if start < len {
        pieces.push(start..len);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One piece: every entry.
    fn whole(len: usize) -> Vec<Range<usize>> {
        std::iter::once(0..len).collect()
    }

    #[test]
    fn multiples_of_the_interval_are_check_points() {
        assert!(is_check_point(10, 5));
        assert!(is_check_point(5, 5));
        assert!(!is_check_point(7, 5));
        assert!(!is_check_point(0, 5), "nothing applied is no check point");
        assert!(!is_check_point(10, 0), "0 turns checks off");
        assert!(is_check_point(3, 1));
    }

    #[test]
    fn a_run_is_cut_right_after_each_check_point() {
        // Indexes 8..=17 with a check every 5: 10 and 15 end pieces.
        assert_eq!(split_at_check_points(8, 10, 5), vec![0..3, 3..8, 8..10]);
        // A run ending exactly at a check point needs no extra piece.
        assert_eq!(split_at_check_points(6, 5, 5), whole(5));
        // A run starting at a check point: its first entry alone.
        assert_eq!(split_at_check_points(10, 3, 5), vec![0..1, 1..3]);
        // No check point inside.
        assert_eq!(split_at_check_points(11, 3, 5), whole(3));
        // Every entry a check point.
        assert_eq!(split_at_check_points(1, 3, 1), vec![0..1, 1..2, 2..3]);
        // Off, and empty.
        assert_eq!(split_at_check_points(1, 4, 0), whole(4));
        assert_eq!(split_at_check_points(1, 0, 5), Vec::<Range<usize>>::new());
        // Index 0 is not a check point, the first multiple is.
        assert_eq!(split_at_check_points(0, 4, 2), vec![0..3, 3..4]);
        // Huge intervals and indexes do not overflow.
        assert_eq!(split_at_check_points(u64::MAX - 2, 3, u64::MAX), whole(3));
        assert_eq!(split_at_check_points(1, 3, u64::MAX), whole(3));
    }

    #[test]
    fn pieces_cover_every_entry_once_and_end_exactly_at_check_points() {
        for first in 0..40u64 {
            for len in 0..30usize {
                for every in 0..12u64 {
                    let pieces = split_at_check_points(first, len, every);
                    let covered: Vec<usize> = pieces.iter().cloned().flatten().collect();
                    assert_eq!(
                        covered,
                        (0..len).collect::<Vec<_>>(),
                        "{first} {len} {every}"
                    );
                    for (position, _) in covered.iter().enumerate() {
                        let index = first + position as u64;
                        let ends_piece = pieces.iter().any(|p| p.end == position + 1);
                        if is_check_point(index, every) {
                            assert!(ends_piece, "{index} ends a piece ({first} {len} {every})");
                        } else if position + 1 != len {
                            assert!(!ends_piece, "{index} is cut for nothing");
                        }
                    }
                }
            }
        }
    }
}
