//! The access policy that allows every request: the policy of a cluster with no access control.
#![no_std]

use iroh_raft_plugin_api::{Decision, Policy, Request};

struct AllowAll;

impl Policy for AllowAll {
    fn authorize(_config: &[u8], _request: &Request) -> Decision {
        Decision::Allow
    }
}

iroh_raft_plugin_api::export_policy!(AllowAll);
