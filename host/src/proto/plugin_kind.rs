//! The three kinds of plugin. Which WIT world each kind is lives with the runtime (`plugin/world.rs`).

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
