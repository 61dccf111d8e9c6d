//! An access policy that allows reads and status requests and denies everything else, naming the
//! denied operation. Its configuration blob is ignored.
#![no_std]
extern crate alloc;

use iroh_raft_plugin_api::{Decision, Policy, Request};

struct ReadOnly;

impl Policy for ReadOnly {
    fn authorize(_config: &[u8], request: &Request) -> Decision {
        if is_read(&request.operation) {
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

/// Whether `operation` only reads: `data.read*`, `*.get`, `*.list`, `*.info`, `*.status`,
/// `cluster.status` or `health`.
fn is_read(operation: &str) -> bool {
    const READ_SUFFIXES: [&str; 4] = [".get", ".list", ".info", ".status"];
    operation.starts_with("data.read")
        || READ_SUFFIXES
            .iter()
            .any(|suffix| operation.ends_with(suffix))
        || matches!(operation, "cluster.status" | "health")
}

iroh_raft_plugin_api::export_policy!(ReadOnly);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

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
            "data.read",
            "data.read.scan",
            "member.list",
            "plugin.info",
            "backup.get",
            "node.status",
            "cluster.status",
            "health",
        ] {
            assert_eq!(decide(operation), Decision::Allow, "{operation}");
        }
    }

    #[test]
    fn everything_else_is_denied_by_name() {
        for operation in [
            "data.write",
            "member.add",
            "plugin.deploy",
            "backup.create",
            "healthy",
            "status",
            "",
        ] {
            let Decision::Deny(reason) = decide(operation) else {
                panic!("{operation} was allowed");
            };
            assert!(
                reason.contains(&alloc::format!("`{operation}`")),
                "{reason}"
            );
        }
    }
}
