//! Why an entry failed, in words that are the same on every replica.

use std::fmt;

use wasmtime::Trap;

use super::entry_host::BoundaryViolation;
use super::host_state::WriteBudgetExceeded;
use super::memory::MemoryLimitExceeded;

/// Why an entry (or a query) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// The plugin returned an error for this entry.
    Rejected(String),
    /// The plugin ran out of fuel.
    OutOfFuel {
        /// The budget it had.
        budget: u64,
    },
    /// The plugin needed more memory than its cap.
    OutOfMemory(String),
    /// The plugin trapped: a panic, `unreachable`, a stack overflow, a bad memory access.
    Trapped(String),
    /// The plugin returned results that do not fit the batch.
    Malformed(String),
    /// The entry passed more to `kv.put` than the cluster's `max_entry_write_bytes`.
    OverWriteBudget(String),
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(message) => f.write_str(message),
            Self::OutOfFuel { budget } => write!(
                f,
                "plugin ran out of fuel: it used up its budget of {budget} (raise fuel_per_entry, or fuel_per_query for a query, in the cluster's plugin limits if this is legitimate)"
            ),
            Self::OutOfMemory(message) => write!(f, "plugin {message}"),
            Self::Trapped(message) => write!(f, "plugin trapped: {message}"),
            Self::Malformed(message) => write!(f, "plugin returned malformed results: {message}"),
            Self::OverWriteBudget(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for EntryError {}

impl EntryError {
    /// The kind of trap this is, as metrics label it; `None` for an error the plugin returned.
    pub fn trap_kind(&self) -> Option<&'static str> {
        match self {
            Self::Rejected(_) => None,
            Self::OutOfFuel { .. } => Some("out_of_fuel"),
            Self::OutOfMemory(_) => Some("out_of_memory"),
            Self::Trapped(_) => Some("trapped"),
            Self::Malformed(_) => Some("malformed"),
            Self::OverWriteBudget(_) => Some("over_write_budget"),
        }
    }
}

/// Classifies a failed call. `budget` is the fuel the call was given.
pub(crate) fn classify(error: &wasmtime::Error, budget: u64) -> EntryError {
    for cause in error.chain() {
        if let Some(limit) = cause.downcast_ref::<MemoryLimitExceeded>() {
            return EntryError::OutOfMemory(limit.to_string());
        }
        if let Some(violation) = cause.downcast_ref::<BoundaryViolation>() {
            return EntryError::Malformed(violation.to_string());
        }
        if let Some(budget) = cause.downcast_ref::<WriteBudgetExceeded>() {
            return EntryError::OverWriteBudget(budget.to_string());
        }
        if let Some(trap) = cause.downcast_ref::<Trap>() {
            return match trap {
                Trap::OutOfFuel => EntryError::OutOfFuel { budget },
                Trap::UnreachableCodeReached => EntryError::Trapped(
                    "unreachable code was reached (a Rust plugin panicked or aborted)".into(),
                ),
                other => EntryError::Trapped(other.to_string()),
            };
        }
    }
    // Not a trap: the guest broke the canonical ABI (bad pointers, invalid UTF-8, ...) or a host
    // call refused it. wasmtime's first line is deterministic; backtraces are not, so drop them.
    let message = error.to_string();
    EntryError::Trapped(
        message
            .lines()
            .next()
            .unwrap_or("unknown fault")
            .to_string(),
    )
}
