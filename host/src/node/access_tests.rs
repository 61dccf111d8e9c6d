//! Tests of `access.rs`.
use super::*;
use crate::proto::op;

#[test]
fn roots_break_glass_and_members_read_status_nothing_more() {
    let root = Standing {
        root: true,
        member: false,
    };
    let member = Standing {
        root: false,
        member: true,
    };
    let stranger = Standing {
        root: false,
        member: false,
    };
    assert!(overrides(root, op::PLUGIN_DEPLOY, "plugin/policy").is_some());
    assert!(overrides(root, op::STATUS_READ, "").is_some());
    assert!(overrides(root, op::PLUGIN_DEPLOY, "plugin/state-machine").is_none());
    assert!(overrides(root, op::DATA_WRITE, "key/x").is_none());
    assert!(overrides(member, op::STATUS_READ, "").is_some());
    assert!(overrides(member, op::PLUGIN_DEPLOY, "plugin/policy").is_none());
    for name in op::ALL {
        assert!(overrides(stranger, name, "").is_none(), "{name}");
    }
}

#[test]
fn without_a_policy_everything_is_denied_with_the_reason() {
    let mut loaded = Loaded {
        generation: 0,
        instance: Err("no access policy is active".into()),
        absent: true,
    };
    let caller = iroh::SecretKey::generate().public();
    let Decision::Deny(reason) = decide_loaded(&mut loaded, &caller, op::STATUS_READ, "") else {
        panic!("allowed without a policy");
    };
    assert!(reason.contains("no access policy"), "{reason}");
}
