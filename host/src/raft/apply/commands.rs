//! One run of consecutive command entries. A tagged write its session has seen is answered from
//! the session table instead of being applied again; the rest go to the plugin, one wasm call per
//! stretch of entries to apply (the plugin numbers a call's entries from its first index, so a
//! stretch never skips one).

use std::ops::Range;

use bytes::Bytes;
use openraft::EntryPayload;
use openraft::type_config::alias::EntryOf;

use crate::proto::{ApplyResponse, LogPayload, SessionTag, TypeConfig};
use crate::raft::RaftStorageError;
use crate::raft::apply::activate::ActiveMachine;
use crate::raft::apply::sessions::{Admission, Sessions};

type C = TypeConfig;

/// Applies `run` (command entries at consecutive indexes) through `machine`, deciding each tagged
/// write against `sessions` in log order, and returns one response per entry.
pub(crate) fn apply_commands(
    machine: &mut ActiveMachine,
    sessions: &mut Sessions,
    run: &[EntryOf<C>],
) -> Result<Vec<ApplyResponse>, RaftStorageError> {
    // Decided before anything runs: the decisions depend on the tags alone, not on results.
    let decisions: Vec<(Option<SessionTag>, Admission)> = run
        .iter()
        .map(|entry| match &entry.payload {
            EntryPayload::Normal(LogPayload::SessionCommand { session, .. }) => {
                (Some(*session), sessions.admit(session, entry.log_id.index))
            }
            _ => (None, Admission::Apply),
        })
        .collect();
    let mut responses: Vec<Option<ApplyResponse>> = vec![None; run.len()];
    for stretch in stretches(decisions.iter().map(|(_, admission)| admission)) {
        let entries = &run[stretch.clone()];
        let payloads: Vec<Bytes> = entries.iter().map(command).collect();
        let first_index = entries.first().map_or(0, |entry| entry.log_id.index);
        let outcomes = machine.applier.apply(first_index, &payloads)?;
        if outcomes.len() != entries.len() {
            return Err(RaftStorageError::Task(format!(
                "the plugin runtime returned {} outcomes for {} entries",
                outcomes.len(),
                entries.len()
            )));
        }
        for (position, outcome) in stretch.zip(outcomes) {
            let response = match outcome {
                Ok(bytes) => ApplyResponse::Ok(bytes),
                Err(error) => ApplyResponse::Failed(error.to_string()),
            };
            if let Some(tag) = &decisions[position].0 {
                sessions.record(tag, &response);
            }
            responses[position] = Some(response);
        }
    }
    // Repeats are answered last: the first result may come from this very run.
    Ok(responses
        .into_iter()
        .zip(decisions)
        .map(|(response, (tag, _))| {
            response.unwrap_or_else(|| tag.map_or(ApplyResponse::None, |tag| sessions.answer(&tag)))
        })
        .collect())
}

/// The command bytes of a command entry.
fn command(entry: &EntryOf<C>) -> Bytes {
    match &entry.payload {
        EntryPayload::Normal(
            LogPayload::Command(bytes) | LogPayload::SessionCommand { command: bytes, .. },
        ) => bytes.clone(),
        _ => Bytes::new(),
    }
}

/// The stretches of positions to apply: maximal runs of [`Admission::Apply`].
fn stretches<'a>(admissions: impl ExactSizeIterator<Item = &'a Admission>) -> Vec<Range<usize>> {
    let len = admissions.len();
    let mut stretches = Vec::new();
    let mut start = None;
    for (position, admission) in admissions.enumerate() {
        match (admission, start) {
            (Admission::Apply, None) => start = Some(position),
            (Admission::Repeat, Some(from)) => {
                stretches.push(from..position);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        stretches.push(from..len);
    }
    stretches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(pattern: &str) -> std::vec::IntoIter<&'static Admission> {
        pattern
            .chars()
            .map(|c| match c {
                'a' => &Admission::Apply,
                _ => &Admission::Repeat,
            })
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn repeats_split_the_run_into_stretches_that_skip_nothing_else() {
        assert_eq!(stretches(decide("aaa")), vec![0..3]);
        assert_eq!(stretches(decide("aara")), vec![0..2, 3..4]);
        assert_eq!(stretches(decide("raar")), vec![1..3]);
        assert_eq!(stretches(decide("rrr")), Vec::<Range<usize>>::new());
        assert_eq!(stretches(decide("")), Vec::<Range<usize>>::new());
        assert_eq!(stretches(decide("arara")), vec![0..1, 2..3, 4..5]);
    }
}
