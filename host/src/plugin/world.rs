//! The WIT names of the plugin contract: which interface each [`PluginKind`] must export, may
//! export, and may import. Validation and instantiation read them from here.

use crate::proto::PluginKind;

const PACKAGE: &str = "iroh-raft:plugin";
const VERSION: &str = "0.1.0";

/// The fully qualified name of an interface of our package, e.g. `iroh-raft:plugin/kv@0.1.0`.
pub(crate) fn interface(name: &str) -> String {
    format!("{PACKAGE}/{name}@{VERSION}")
}

/// The WIT world behind a plugin kind.
pub(crate) trait World {
    /// The interface a plugin of this kind must export.
    fn export(self) -> &'static str;
    /// Interfaces a plugin of this kind may export besides [`World::export`].
    fn optional_exports(self) -> &'static [&'static str];
    /// The interfaces the host provides to a plugin of this kind; nothing else may be imported.
    fn imports(self) -> &'static [&'static str];
}

impl World for PluginKind {
    fn export(self) -> &'static str {
        match self {
            Self::StateMachine => "machine",
            Self::Policy => "authorizer",
            Self::Backup => "archive",
        }
    }

    fn optional_exports(self) -> &'static [&'static str] {
        match self {
            Self::StateMachine => &["migration", "resources"],
            Self::Policy | Self::Backup => &[],
        }
    }

    fn imports(self) -> &'static [&'static str] {
        match self {
            Self::StateMachine => &["kv", "log", "entry"],
            Self::Policy => &["policy-config", "log"],
            Self::Backup => &["blob-store", "log"],
        }
    }
}
