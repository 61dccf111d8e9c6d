//! A test access policy that misbehaves as its configuration says, so the tests can show that
//! the host fails closed: `trap` panics in every decision, `loop` never returns (it runs out of
//! fuel), `allow` allows everything. Never a default.
#![no_std]
extern crate alloc;

use iroh_raft_plugin_api::{Decision, Policy, Request};

struct Faulty;

impl Policy for Faulty {
    fn authorize(config: &[u8], request: &Request) -> Decision {
        match config {
            b"trap" => panic!("the faulty policy traps on {}", request.operation),
            b"loop" => {
                let mut n: u64 = 0;
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            b"allow" => Decision::Allow,
            _ => Decision::Deny(alloc::format!(
                "the faulty policy knows no configuration {:?}",
                core::str::from_utf8(config).unwrap_or("(not UTF-8)")
            )),
        }
    }
}

iroh_raft_plugin_api::export_policy!(Faulty);
