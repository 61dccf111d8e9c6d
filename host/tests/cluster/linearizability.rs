//! A linearizability checker for the kv plugin's registers (get, put, compare-and-swap), after
//! Wing & Gong and Lowe: a depth-first search for an order of the operations that respects real
//! time and the register's semantics, remembering every (linearized set, register value) it has
//! seen so no state is explored twice. Keys are independent registers, so each key's operations
//! are checked alone (porcupine's partitioning).
//!
//! An operation whose outcome the client never learned (its request timed out or its connection
//! broke) "maybe happened", as Jepsen says: it ends at infinity, so it may take effect at any
//! time after it was invoked, or never (taking effect after everything else is the same as never
//! for what any operation observed); an unanswered read observed nothing and is left out. On a
//! violation the checker drops operations while the rest still fails (delta debugging: long runs
//! first, then shorter ones, down to single operations), and reports that smallest failing
//! sub-history.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// What a client asked of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Input {
    Get,
    Put(Vec<u8>),
    Cas {
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    },
}

/// What the cluster answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Output {
    /// A get's answer.
    Value(Option<Vec<u8>>),
    /// A put was applied.
    Written,
    /// A compare-and-swap ran: whether it swapped, and the value after it.
    Cas {
        swapped: bool,
        current: Option<Vec<u8>>,
    },
    /// No answer: the operation may or may not have happened.
    Unknown,
}

/// One operation in a history. Times are the client's (any monotonic clock, one for all clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operation {
    pub(crate) client: usize,
    pub(crate) key: Vec<u8>,
    pub(crate) input: Input,
    pub(crate) output: Output,
    pub(crate) invoked: u64,
    /// When the answer arrived; ignored (infinity) for [`Output::Unknown`].
    pub(crate) completed: u64,
}

impl Operation {
    fn end(&self) -> u64 {
        match self.output {
            Output::Unknown => u64::MAX,
            _ => self.completed,
        }
    }
}

/// The register after `input` with answer `output` on `state`, if that answer is possible.
fn step(state: &Option<Vec<u8>>, input: &Input, output: &Output) -> Option<Option<Vec<u8>>> {
    match (input, output) {
        (Input::Get, Output::Value(seen)) => (seen == state).then(|| state.clone()),
        (Input::Get, Output::Unknown) => Some(state.clone()),
        (Input::Put(value), Output::Written | Output::Unknown) => Some(Some(value.clone())),
        (Input::Cas { expected, new }, output) => {
            let swapped = state == expected;
            let after = if swapped {
                Some(new.clone())
            } else {
                state.clone()
            };
            match output {
                Output::Unknown => Some(after),
                Output::Cas {
                    swapped: said,
                    current,
                } => (*said == swapped && *current == after).then_some(after),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether the operations of one key (starting from an absent key) are linearizable.
fn linearizable(ops: &[Operation]) -> bool {
    let mut done = vec![false; ops.len()];
    let mut seen = HashSet::new();
    search(ops, &mut done, &None, &mut seen)
}

fn search(
    ops: &[Operation],
    done: &mut Vec<bool>,
    state: &Option<Vec<u8>>,
    seen: &mut HashSet<(Vec<bool>, Option<Vec<u8>>)>,
) -> bool {
    // Only operations invoked before every pending operation's end may go next.
    let Some(horizon) = ops
        .iter()
        .zip(done.iter())
        .filter(|(_, done)| !**done)
        .map(|(op, _)| op.end())
        .min()
    else {
        return true;
    };
    if !seen.insert((done.clone(), state.clone())) {
        return false;
    }
    for index in 0..ops.len() {
        if done[index] || ops[index].invoked > horizon {
            continue;
        }
        if let Some(next) = step(state, &ops[index].input, &ops[index].output) {
            done[index] = true;
            if search(ops, done, &next, seen) {
                return true;
            }
            done[index] = false;
        }
    }
    false
}

/// The value `op` writes, if it writes one.
fn written(op: &Operation) -> Option<&[u8]> {
    match &op.input {
        Input::Put(value) | Input::Cas { new: value, .. } => Some(value),
        Input::Get => None,
    }
}

/// Whether an operation of `ops` saw `value` (a get's answer, a compare-and-swap's expectation or
/// its answer).
fn observed(ops: &[Operation], value: &[u8]) -> bool {
    ops.iter().any(|op| {
        let expected = match &op.input {
            Input::Cas {
                expected: Some(expected),
                ..
            } => expected == value,
            _ => false,
        };
        let answered = match &op.output {
            Output::Value(Some(seen))
            | Output::Cas {
                current: Some(seen),
                ..
            } => seen == value && written(op) != Some(value),
            _ => false,
        };
        expected || answered
    })
}

/// A key whose operations admit no linearization, with a smallest sub-history that fails.
#[derive(Debug)]
pub(crate) struct Violation {
    pub(crate) key: Vec<u8>,
    pub(crate) ops: Vec<Operation>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {:?}: these {} operations admit no linearization:",
            String::from_utf8_lossy(&self.key),
            self.ops.len()
        )?;
        for op in &self.ops {
            let end = match op.output {
                Output::Unknown => "?".to_string(),
                _ => op.completed.to_string(),
            };
            writeln!(
                f,
                "  client {} [{} .. {end}] {:?} -> {:?}",
                op.client, op.invoked, op.input, op.output
            )?;
        }
        Ok(())
    }
}

/// Room for the search, which recurses once per operation of a key: a 34-second run across
/// real partitions put over 3,000 operations on one key and overflowed a test thread's 2 MiB.
const SEARCH_STACK: usize = 512 << 20;

/// Checks a whole history; the first key that fails, minimized. Runs on a thread of its own with
/// [`SEARCH_STACK`] (reserved, touched only as deep as the search goes).
pub(crate) fn check(history: &[Operation]) -> Result<(), Violation> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("linearizability".into())
            .stack_size(SEARCH_STACK)
            .spawn_scoped(scope, || check_on_this_thread(history))
            .expect("a thread for the checker")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn check_on_this_thread(history: &[Operation]) -> Result<(), Violation> {
    let mut keys: BTreeMap<&[u8], Vec<Operation>> = BTreeMap::new();
    // A read that was never answered observed nothing and changed nothing: it constrains no
    // order, but each would stay a candidate to the search's end and multiply its states.
    let constraining = history
        .iter()
        .filter(|op| !(op.input == Input::Get && op.output == Output::Unknown));
    for op in constraining {
        keys.entry(&op.key).or_default().push(op.clone());
    }
    for (key, ops) in keys {
        if linearizable(&ops) {
            continue;
        }
        return Err(Violation {
            key: key.to_vec(),
            ops: minimize(ops),
        });
    }
    Ok(())
}

/// A smallest sub-history of the failing `ops` that still fails, by delta debugging: drop a run
/// of `chunk` operations while the rest still fails, from runs of half the history down to single
/// operations (a few hundred searches for thousands of operations, where dropping one at a time
/// costs one search per operation). A write that a remaining operation saw stays: without it the
/// minimum would always be "a read of a value nobody wrote", which hides what went wrong.
fn minimize(mut ops: Vec<Operation>) -> Vec<Operation> {
    let mut chunk = ops.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        while start < ops.len() {
            let end = (start + chunk).min(ops.len());
            let candidate = without(&ops, start..end);
            if candidate.len() < ops.len() && !linearizable(&candidate) {
                ops = candidate;
            } else {
                start = end;
            }
        }
        if chunk == 1 {
            return ops;
        }
        chunk = chunk.div_ceil(2);
    }
}

/// `ops` without those in `dropped`, except the writes of `dropped` that an operation still in
/// the history saw (and the writes those kept ones saw, and so on).
fn without(ops: &[Operation], dropped: std::ops::Range<usize>) -> Vec<Operation> {
    let mut kept = vec![false; ops.len()];
    loop {
        let remaining: Vec<Operation> = ops
            .iter()
            .enumerate()
            .filter(|(i, _)| !dropped.contains(i) || kept[*i])
            .map(|(_, op)| op.clone())
            .collect();
        let seen: Vec<usize> = dropped
            .clone()
            .filter(|&i| !kept[i] && written(&ops[i]).is_some_and(|v| observed(&remaining, v)))
            .collect();
        if seen.is_empty() {
            return remaining;
        }
        for i in seen {
            kept[i] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, input: Input, output: Output, invoked: u64, completed: u64) -> Operation {
        Operation {
            client,
            key: b"k".to_vec(),
            input,
            output,
            invoked,
            completed,
        }
    }

    fn put(v: u8) -> Input {
        Input::Put(vec![v])
    }

    fn seen(v: Option<u8>) -> Output {
        Output::Value(v.map(|v| vec![v]))
    }

    #[test]
    fn a_sequential_history_that_reads_its_writes_is_linearizable() {
        let history = [
            op(0, Input::Get, seen(None), 0, 1),
            op(0, put(1), Output::Written, 2, 3),
            op(1, Input::Get, seen(Some(1)), 4, 5),
            op(
                1,
                Input::Cas {
                    expected: Some(vec![1]),
                    new: vec![2],
                },
                Output::Cas {
                    swapped: true,
                    current: Some(vec![2]),
                },
                6,
                7,
            ),
            op(0, Input::Get, seen(Some(2)), 8, 9),
        ];
        check(&history).expect("linearizable");
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        for read in [None, Some(1)] {
            let history = [
                op(0, put(1), Output::Written, 0, 10),
                op(1, Input::Get, seen(read), 2, 5),
            ];
            check(&history).expect("linearizable");
        }
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected_and_minimized() {
        let history = [
            op(2, Input::Get, seen(None), 0, 1),
            op(0, put(1), Output::Written, 2, 3),
            op(2, put(7), Output::Written, 2, 3),
            op(1, Input::Get, seen(Some(7)), 4, 5),
            // Real time says both puts are over; this read still sees no value at all.
            op(1, Input::Get, seen(None), 6, 7),
        ];
        let violation = check(&history).expect_err("a stale read");
        assert_eq!(violation.key, b"k");
        // A put that completed, then a read that does not see it (or anything): two operations.
        assert_eq!(violation.ops.len(), 2, "{violation}");
        assert_eq!(violation.ops[1].output, seen(None), "{violation}");
        assert!(violation.to_string().contains("admit no linearization"));
    }

    #[test]
    fn two_compare_and_swaps_from_absent_cannot_both_win() {
        let cas = |client, new: u8| {
            op(
                client,
                Input::Cas {
                    expected: None,
                    new: vec![new],
                },
                Output::Cas {
                    swapped: true,
                    current: Some(vec![new]),
                },
                0,
                10,
            )
        };
        check(&[cas(0, 1), cas(1, 2)]).expect_err("both swapped");
        check(&[cas(0, 1)]).expect("one swap alone is fine");
    }

    #[test]
    fn a_value_never_written_is_rejected() {
        let violation = check(&[
            op(0, put(1), Output::Written, 0, 1),
            op(1, Input::Get, seen(Some(9)), 2, 3),
        ])
        .expect_err("9 was never written");
        assert_eq!(violation.ops.len(), 1, "{violation}");
    }

    #[test]
    fn an_unanswered_write_may_or_may_not_have_happened() {
        // Seen later: it happened.
        check(&[
            op(0, put(2), Output::Unknown, 0, 0),
            op(1, Input::Get, seen(Some(2)), 100, 101),
        ])
        .expect("took effect");
        // Never seen: it did not (or it happens after everything).
        check(&[
            op(0, put(1), Output::Written, 0, 1),
            op(0, put(2), Output::Unknown, 2, 2),
            op(1, Input::Get, seen(Some(1)), 100, 101),
        ])
        .expect("did not take effect");
        // But it cannot take effect before it was invoked.
        check(&[
            op(1, Input::Get, seen(Some(2)), 0, 1),
            op(0, put(2), Output::Unknown, 5, 5),
        ])
        .expect_err("seen before it was sent");
    }

    #[test]
    fn keys_are_independent_registers() {
        let mut other = op(1, Input::Get, seen(None), 4, 5);
        other.key = b"other".to_vec();
        check(&[op(0, put(1), Output::Written, 0, 1), other]).expect("another key is empty");
    }

    #[test]
    fn a_long_concurrent_history_checks_quickly() {
        // Four clients, 400 overlapping puts and reads of one key, each read seeing the value of
        // the put that overlaps it: the memo keeps the search linear.
        let mut history = Vec::new();
        for round in 0..100u64 {
            let t = round * 10;
            let value = (round % 250) as u8;
            history.push(op(0, put(value), Output::Written, t, t + 6));
            history.push(op(1, Input::Get, seen(Some(value)), t + 5, t + 8));
            history.push(op(2, Input::Get, seen(Some(value)), t + 7, t + 9));
            history.push(op(3, Input::Get, Output::Unknown, t + 1, t + 2));
        }
        check(&history).expect("linearizable");
    }

    /// Guards the checker taking over four minutes on a history a cut-off leader with a slow
    /// clock produced: thousands of operations on one key, one stale read, and hundreds of lease
    /// reads that failed (each unanswered read stayed a candidate to the end of the search, and
    /// the minimizer searched once per operation).
    #[test]
    fn bug_a_long_failing_history_with_unanswered_reads_took_minutes_to_minimize() {
        let mut history = Vec::new();
        let value = |round: u64| round.to_be_bytes().to_vec();
        for round in 0..1500u64 {
            let t = round * 10;
            let (written, read) = (Input::Put(value(round)), Output::Value(Some(value(round))));
            history.push(op(0, written, Output::Written, t, t + 4));
            history.push(op(1, Input::Get, read, t + 5, t + 6));
            history.push(op(2, Input::Get, Output::Unknown, t + 1, t + 2));
        }
        // Round 1000's read sees round 999's value: stale.
        history[3001].output = Output::Value(Some(value(999)));
        let violation = check(&history).expect_err("a stale read");
        // The put it should have seen, the one it saw, and the read.
        assert_eq!(violation.ops.len(), 3, "{violation}");
        assert!(violation.ops.iter().all(|op| op.output != Output::Unknown));
    }
}
