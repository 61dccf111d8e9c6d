//! [`Role`]: the fixed roles an RBAC grant gives, and the operations each allows.

use core::fmt;
use core::str::FromStr;

use alloc::string::String;
use serde::{Deserialize, Serialize};

use crate::op;

/// A fixed set of operations. Written in configurations and messages as `admin`, `observer`,
/// `member-manager` and `monitor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Every operation in [`op::ALL`].
    Admin,
    /// Reads without changing anything: status, health, metrics, data reads, config reads, events
    /// and the backup list. Not `log.read`, which exposes every command.
    Observer,
    /// Changes membership (add, remove, role) and reads status and health.
    MemberManager,
    /// Metrics and health only, for monitoring systems.
    Monitor,
}

const OBSERVER: &[&str] = &[
    op::STATUS_READ,
    op::HEALTH_READ,
    op::METRICS_READ,
    op::DATA_READ,
    op::CONFIG_READ,
    op::EVENTS_SUBSCRIBE,
    op::BACKUP_LIST,
];

const MEMBER_MANAGER: &[&str] = &[
    op::MEMBER_ADD,
    op::MEMBER_REMOVE,
    op::MEMBER_ROLE,
    op::STATUS_READ,
    op::HEALTH_READ,
];

const MONITOR: &[&str] = &[op::METRICS_READ, op::HEALTH_READ];

impl Role {
    /// Every role.
    pub const ALL: &[Role] = &[
        Role::Admin,
        Role::Observer,
        Role::MemberManager,
        Role::Monitor,
    ];

    /// The operations this role allows.
    pub fn operations(self) -> &'static [&'static str] {
        match self {
            Role::Admin => op::ALL,
            Role::Observer => OBSERVER,
            Role::MemberManager => MEMBER_MANAGER,
            Role::Monitor => MONITOR,
        }
    }

    /// Whether this role allows `operation`. Unknown operations are never allowed.
    pub fn allows(self, operation: &str) -> bool {
        self.operations().contains(&operation)
    }

    /// The role's name, as configurations spell it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Observer => "observer",
            Role::MemberManager => "member-manager",
            Role::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .iter()
            .copied()
            .find(|role| role.name() == name)
            .ok_or_else(|| ParseRoleError {
                name: String::from(name),
            })
    }
}

/// A role name that is none of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseRoleError {
    /// The name given.
    pub name: String,
}

impl fmt::Display for ParseRoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role `{}`: the roles are admin, observer, member-manager and monitor",
            self.name
        )
    }
}

impl core::error::Error for ParseRoleError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// The expected matrix, row by row: which roles allow each operation.
    #[test]
    fn every_role_allows_exactly_its_operations() {
        use Role::*;
        let expected: &[(&str, &[Role])] = &[
            (op::DATA_WRITE, &[Admin]),
            (op::DATA_READ, &[Admin, Observer]),
            (op::MEMBER_ADD, &[Admin, MemberManager]),
            (op::MEMBER_REMOVE, &[Admin, MemberManager]),
            (op::MEMBER_ROLE, &[Admin, MemberManager]),
            (op::LEADER_TRANSFER, &[Admin]),
            (op::CONFIG_READ, &[Admin, Observer]),
            (op::CONFIG_UPDATE, &[Admin]),
            (op::LOG_READ, &[Admin]),
            (op::LOG_COMPACT, &[Admin]),
            (op::SNAPSHOT_TRIGGER, &[Admin]),
            (op::BACKUP_CREATE, &[Admin]),
            (op::BACKUP_RESTORE, &[Admin]),
            (op::BACKUP_LIST, &[Admin, Observer]),
            (op::PLUGIN_DEPLOY, &[Admin]),
            (op::PLUGIN_ROLLBACK, &[Admin]),
            (op::EVENTS_SUBSCRIBE, &[Admin, Observer]),
            (op::METRICS_READ, &[Admin, Observer, Monitor]),
            (op::STATUS_READ, &[Admin, Observer, MemberManager]),
            (op::HEALTH_READ, &[Admin, Observer, MemberManager, Monitor]),
        ];
        assert_eq!(expected.len(), op::ALL.len());
        for ((operation, allowed), listed) in expected.iter().zip(op::ALL) {
            assert_eq!(operation, listed, "the matrix follows op::ALL");
            for role in Role::ALL {
                assert_eq!(
                    role.allows(operation),
                    allowed.contains(role),
                    "{role} × {operation}"
                );
            }
        }
        for role in Role::ALL {
            assert!(!role.allows("data"), "{role}");
            assert!(!role.allows(""), "{role}");
            assert!(role.operations().iter().all(|name| op::is_known(name)));
        }
    }

    #[test]
    fn names_round_trip_through_display_from_str_and_serde() {
        for role in Role::ALL {
            let name = role.to_string();
            assert_eq!(name.parse::<Role>(), Ok(*role));
            let json = serde_json::to_string(role).unwrap();
            assert_eq!(json, alloc::format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), *role);
        }
        assert_eq!(Role::MemberManager.to_string(), "member-manager");
    }

    #[test]
    fn an_unknown_name_lists_the_roles() {
        let error = "root".parse::<Role>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown role `root`: the roles are admin, observer, member-manager and monitor"
        );
        assert!("Admin".parse::<Role>().is_err());
    }
}
