//! The three kinds of plugin and the WIT names that tell them apart.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a plugin is for; each kind is one WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PluginKind {
    /// The replicated state machine (`world state-machine`).
    StateMachine,
    /// The access-control policy (`world policy`).
    Policy,
    /// The backup handler (`world backup`).
    Backup,
}

pub(crate) const PACKAGE: &str = "iroh-raft:plugin";
pub(crate) const VERSION: &str = "0.1.0";

/// The fully qualified name of an interface of our package, e.g. `iroh-raft:plugin/kv@0.1.0`.
pub(crate) fn interface(name: &str) -> String {
    format!("{PACKAGE}/{name}@{VERSION}")
}

impl PluginKind {
    /// All kinds.
    pub const ALL: [PluginKind; 3] = [Self::StateMachine, Self::Policy, Self::Backup];

    /// The name used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StateMachine => "state-machine",
            Self::Policy => "policy",
            Self::Backup => "backup",
        }
    }

    /// The interface a plugin of this kind must export.
    pub(crate) fn export(self) -> &'static str {
        match self {
            Self::StateMachine => "machine",
            Self::Policy => "authorizer",
            Self::Backup => "archive",
        }
    }

    /// Interfaces a plugin of this kind may export besides [`Self::export`].
    pub(crate) fn optional_exports(self) -> &'static [&'static str] {
        match self {
            Self::StateMachine => &["migration"],
            Self::Policy | Self::Backup => &[],
        }
    }

    /// The interfaces the host provides to a plugin of this kind; nothing else may be imported.
    pub(crate) fn imports(self) -> &'static [&'static str] {
        match self {
            Self::StateMachine => &["kv", "log"],
            Self::Policy => &["policy-config", "log"],
            Self::Backup => &["blob-store", "log"],
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PluginKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                format!("unknown plugin kind `{s}`: expected state-machine, policy or backup")
            })
    }
}
