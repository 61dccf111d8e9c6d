//! An access policy that allows what the observer role allows to every caller (status, health,
//! metrics, data reads, config reads, events and the backup list; see
//! `iroh_raft_access_types::Role::Observer`) and denies everything else, naming the denied
//! operation. Its configuration blob is ignored.
#![no_std]
extern crate alloc;

use iroh_raft_access_types::Role;
use iroh_raft_plugin_api::{Decision, Policy, Request};

struct ReadOnly;

impl Policy for ReadOnly {
    fn authorize(_config: &[u8], request: &Request) -> Decision {
        if Role::Observer.allows(&request.operation) {
            Decision::Allow
        } else {
            Decision::Deny(alloc::format!(
                "operation `{}` is denied: this cluster's read-only policy allows only reads and \
                 status requests; deploy another policy to allow it",
                request.operation
            ))
        }
    }
}

iroh_raft_plugin_api::export_policy!(ReadOnly);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use iroh_raft_access_types::op;

    fn decide(operation: &str) -> Decision {
        let request = Request {
            peer: String::from("peer"),
            operation: String::from(operation),
            resource: String::new(),
        };
        ReadOnly::authorize(b"", &request)
    }

    #[test]
    fn reads_and_status_requests_are_allowed() {
        for operation in [
            op::STATUS_READ,
            op::HEALTH_READ,
            op::METRICS_READ,
            op::DATA_READ,
            op::CONFIG_READ,
            op::EVENTS_SUBSCRIBE,
            op::BACKUP_LIST,
        ] {
            assert_eq!(decide(operation), Decision::Allow, "{operation}");
        }
    }

    #[test]
    fn everything_else_is_denied_by_name() {
        let others = op::ALL
            .iter()
            .filter(|operation| !Role::Observer.allows(operation));
        for operation in others
            .copied()
            .chain(["data.read.scan", "health", "status", ""])
        {
            let Decision::Deny(reason) = decide(operation) else {
                panic!("{operation} was allowed");
            };
            assert!(
                reason.contains(&alloc::format!("`{operation}`")),
                "{reason}"
            );
        }
        // `log.read` reads, but it exposes every command ever written.
        assert!(matches!(decide(op::LOG_READ), Decision::Deny(_)));
    }
}
