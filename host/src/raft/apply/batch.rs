//! How one `apply` call of openraft becomes plugin calls: [`plan`] groups the entries (consecutive
//! commands into one run, applied by `commands.rs` in as few wasm calls as its session repeats
//! allow; blank and membership entries alone; plugin
//! deploys and rollbacks alone), and [`apply_entries`] runs the plan and commits once, atomically
//! with the new [`AppliedState`]. A deploy splits the call: what came before it commits under the
//! old plugin, the activation commits with its `migrate` writes, and the rest runs on the new
//! plugin (`deploy.rs`). A consistency check point (`check_points.rs`) splits it too: the state
//! there is committed on its own and a view of it is captured (`captures.rs`), as is the state at
//! the end of the call.

use std::ops::Range;

use openraft::EntryPayload;
use openraft::StoredMembership;
use openraft::type_config::alias::EntryOf;

use crate::proto::{ApplyResponse, ClusterConfig, ClusterEvent, LogPayload, TypeConfig};
use crate::raft::RaftStorageError;
use crate::raft::apply::activate::{Activator, ActiveMachine};
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::apply::captures::Taken;
use crate::raft::apply::check_points::{is_check_point, split_at_check_points};
use crate::raft::apply::commands::apply_commands;

type C = TypeConfig;

/// One step of an apply call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Commands at consecutive log indexes, applied by one plugin call.
    Commands(Range<usize>),
    /// A blank, membership or configuration entry: recorded, nothing for the plugin.
    Record(usize),
    /// A plugin deploy or rollback: activates a plugin at this index.
    Plugin(usize),
    /// A backup restore: replaces the data at this index.
    Restore(usize),
}

/// How many leading `entries` are at or below `last_applied` and must not be applied again. A raft
/// core replaced for new election timeouts can leave its old worker still draining entries the
/// new core has applied; applying them twice would run their commands twice.
pub(crate) fn already_applied(entries: &[EntryOf<C>], last_applied: Option<u64>) -> usize {
    let Some(last) = last_applied else {
        return 0;
    };
    entries.partition_point(|entry| entry.log_id.index <= last)
}

/// Groups `entries` into steps, in order.
pub(crate) fn plan(entries: &[EntryOf<C>]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut run: Option<Range<usize>> = None;
    for (position, entry) in entries.iter().enumerate() {
        let is_command = matches!(
            entry.payload,
            EntryPayload::Normal(LogPayload::Command(_) | LogPayload::SessionCommand { .. })
        );
        let is_plugin = matches!(
            entry.payload,
            EntryPayload::Normal(LogPayload::Deploy(_) | LogPayload::Rollback { .. })
        );
        let is_restore = matches!(entry.payload, EntryPayload::Normal(LogPayload::Restore(_)));
        let continues = run.as_ref().is_some_and(|run| {
            // Indexes are consecutive in any apply call; split anyway if not, since the plugin
            // numbers a batch's entries from its first index.
            entries[run.end - 1].log_id.index.checked_add(1) == Some(entry.log_id.index)
        });
        match (is_command, continues) {
            (true, true) => {
                if let Some(run) = &mut run {
                    run.end = position + 1;
                }
            }
            (true, false) => {
                if let Some(done) = run.replace(position..position + 1) {
                    steps.push(Step::Commands(done));
                }
            }
            (false, _) => {
                if let Some(done) = run.take() {
                    steps.push(Step::Commands(done));
                }
                steps.push(if is_plugin {
                    Step::Plugin(position)
                } else if is_restore {
                    Step::Restore(position)
                } else {
                    Step::Record(position)
                });
            }
        }
    }
    if let Some(done) = run {
        steps.push(Step::Commands(done));
    }
    steps
}

/// What an apply call produced: the new state, one response per entry, and the events to publish.
pub(crate) struct Applied {
    pub(crate) state: AppliedState,
    pub(crate) responses: Vec<ApplyResponse>,
    pub(crate) events: Vec<ClusterEvent>,
    /// Views of the committed state at the check points passed, then at the end of the call.
    pub(crate) captures: Vec<Taken>,
    /// A restore replaced the data: views taken before this call may read a data generation
    /// that no longer exists.
    pub(crate) replaced: bool,
}

/// Applies `entries` (in log order, continuing from `state`) through `machine`, then commits the
/// writes and the new applied state in one batch (a deploy among them commits what precedes it
/// first). On error nothing more is committed and the node stops.
pub(crate) fn apply_entries(
    machine: &mut ActiveMachine,
    state: &AppliedState,
    entries: &[EntryOf<C>],
    activator: &Activator<'_>,
) -> Result<Applied, RaftStorageError> {
    let result = run(machine, state, entries, activator);
    if result.is_err() {
        machine.applier.abort();
    }
    result
}

fn run(
    machine: &mut ActiveMachine,
    state: &AppliedState,
    entries: &[EntryOf<C>],
    activator: &Activator<'_>,
) -> Result<Applied, RaftStorageError> {
    let mut next = state.clone();
    let mut responses = Vec::with_capacity(entries.len());
    let mut events = Vec::new();
    let mut captures = Checkpoints::default();
    let mut replaced = false;
    for step in plan(entries) {
        match step {
            Step::Commands(range) => {
                let first_index = entries[range.start].log_id.index;
                // The interval in effect now: a configuration entry earlier in the call counts.
                let every = next.config.check_every;
                for piece in split_at_check_points(first_index, range.len(), every) {
                    let batch = &entries[range.start + piece.start..range.start + piece.end];
                    responses.extend(apply_commands(machine, &mut next.sessions, batch)?);
                    if let Some(last) = batch.last() {
                        captures.at_check_point(machine, activator, &mut next, last)?;
                    }
                }
            }
            Step::Record(position) => {
                let entry = &entries[position];
                responses.push(match &entry.payload {
                    EntryPayload::Membership(membership) => {
                        // Every membership entry, in log order: no role change is ever missed.
                        let before = crate::events::roles(next.last_membership.membership());
                        next.last_membership =
                            StoredMembership::new(Some(entry.log_id), membership.clone());
                        events.extend(crate::events::role_events(
                            &before,
                            &crate::events::roles(membership),
                        ));
                        ApplyResponse::None
                    }
                    EntryPayload::Normal(LogPayload::Config(config)) => apply_config(
                        machine,
                        activator,
                        &mut next,
                        config,
                        entry.log_id.index,
                        &mut events,
                    )?,
                    _ => ApplyResponse::None,
                });
                captures.at_check_point(machine, activator, &mut next, entry)?;
            }
            Step::Plugin(position) => {
                // What came before ran on the old plugin: commit it under that plugin first.
                commit_before(machine, &mut next, entries, position, &captures)?;
                responses.push(activator.apply(
                    machine,
                    &mut next,
                    &entries[position],
                    &mut events,
                )?);
                captures.at_check_point(machine, activator, &mut next, &entries[position])?;
            }
            Step::Restore(position) => {
                commit_before(machine, &mut next, entries, position, &captures)?;
                let entry = &entries[position];
                let restored = match &entry.payload {
                    EntryPayload::Normal(LogPayload::Restore(restore)) => {
                        activator.restore(machine, &mut next, entry.log_id, restore)?
                    }
                    _ => crate::raft::apply::restore::Restored {
                        response: ApplyResponse::None,
                        hash: None,
                    },
                };
                match (&restored.response, restored.hash) {
                    (ApplyResponse::Restored(outcome), Some(hash)) => {
                        events.push(ClusterEvent::BackupRestored {
                            backup_id: outcome.backup_id.clone(),
                            index: outcome.index,
                        });
                        // The restore committed; the views taken so far read the generation it
                        // dropped. A view of the new state, with the hash the load computed.
                        replaced = true;
                        captures.taken.clear();
                        captures.taken.push(Taken {
                            index: entry.log_id.index,
                            check: is_check_point(entry.log_id.index, next.config.check_every),
                            view: activator.store.export()?,
                            hash: Some(hash),
                        });
                        captures.committed = Some(entry.log_id.index);
                    }
                    _ => captures.at_check_point(machine, activator, &mut next, entry)?,
                }
                responses.push(restored.response);
            }
        }
    }
    if let Some(last) = entries.last() {
        captures.at_end(machine, activator, &mut next, last)?;
    }
    Ok(Applied {
        state: next,
        responses,
        events,
        captures: captures.taken,
        replaced,
    })
}

/// Commits the entries before `position` (unless a check point just did), so that an activation
/// or a restore at `position` starts from committed state.
fn commit_before(
    machine: &mut ActiveMachine,
    next: &mut AppliedState,
    entries: &[EntryOf<C>],
    position: usize,
    captures: &Checkpoints,
) -> Result<(), RaftStorageError> {
    if let Some(before) = position.checked_sub(1)
        && captures.committed != Some(entries[before].log_id.index)
    {
        next.last_applied = Some(entries[before].log_id);
        machine.applier.commit(&next.to_mark()?)?;
    }
    Ok(())
}

/// The commits an apply call makes at check points and at its end, with a view of each.
#[derive(Default)]
struct Checkpoints {
    taken: Vec<Taken>,
    /// The index of the last commit made here.
    committed: Option<u64>,
}

impl Checkpoints {
    /// Commits everything up to and including `entry` and keeps a view of it, if `entry` is a
    /// check point under the interval in effect after it.
    fn at_check_point(
        &mut self,
        machine: &mut ActiveMachine,
        activator: &Activator<'_>,
        next: &mut AppliedState,
        entry: &EntryOf<C>,
    ) -> Result<(), RaftStorageError> {
        if is_check_point(entry.log_id.index, next.config.check_every) {
            self.commit(machine, activator, next, entry, true)?;
        }
        Ok(())
    }

    /// The end of the call: commits up to `entry` (unless a check point just did) and keeps a
    /// view of it.
    fn at_end(
        &mut self,
        machine: &mut ActiveMachine,
        activator: &Activator<'_>,
        next: &mut AppliedState,
        entry: &EntryOf<C>,
    ) -> Result<(), RaftStorageError> {
        if self.committed == Some(entry.log_id.index) {
            return Ok(());
        }
        self.commit(machine, activator, next, entry, false)
    }

    fn commit(
        &mut self,
        machine: &mut ActiveMachine,
        activator: &Activator<'_>,
        next: &mut AppliedState,
        entry: &EntryOf<C>,
        check: bool,
    ) -> Result<(), RaftStorageError> {
        next.last_applied = Some(entry.log_id);
        machine.applier.commit(&next.to_mark()?)?;
        self.committed = Some(entry.log_id.index);
        // Under the apply lock and right after the commit: exactly the state at this index.
        self.taken.push(Taken {
            index: entry.log_id.index,
            check,
            view: activator.store.export()?,
            hash: None,
        });
        Ok(())
    }
}

/// A configuration entry: accepted only as the next version (two updates proposed against the same
/// version cannot both win), then in effect from this entry on, plugin budgets included.
fn apply_config(
    machine: &mut ActiveMachine,
    activator: &Activator<'_>,
    next: &mut AppliedState,
    config: &ClusterConfig,
    index: u64,
    events: &mut Vec<ClusterEvent>,
) -> Result<ApplyResponse, RaftStorageError> {
    let expected = next.config.version + 1;
    if config.version != expected {
        return Ok(ApplyResponse::Failed(format!(
            "configuration version {} was proposed, but version {} is next: another update won; \
             read the configuration again and retry",
            config.version, expected
        )));
    }
    if let Err(error) = config.validate() {
        return Ok(ApplyResponse::Failed(error.to_string()));
    }
    // A proposed configuration has version 1 or more, so its own budgets apply from here.
    if let Err(reason) = activator.set_limits(machine, config.limits)? {
        return Ok(ApplyResponse::Failed(format!(
            "the active state machine cannot run under configuration version {}: {reason}; \
             the configuration in effect is unchanged",
            config.version
        )));
    }
    next.config = config.clone();
    events.push(ClusterEvent::ConfigurationChanged {
        version: config.version,
        index,
    });
    Ok(ApplyResponse::None)
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
