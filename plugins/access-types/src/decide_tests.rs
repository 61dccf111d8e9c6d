use super::*;
use crate::resource::{self, STATE_MACHINE};
use crate::{Role, op};
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

const ALICE: &str = "a11ce00000000000000000000000000000000000000000000000000000000000";
const BOB: &str = "b0b0000000000000000000000000000000000000000000000000000000000000";

fn grant(peer: &str, role: Role) -> Grant {
    Grant {
        name: None,
        peer: peer.to_string(),
        role,
        operations: None,
        read_prefixes: None,
        write_prefixes: None,
    }
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|item| item.to_string()).collect())
}

fn config(grants: Vec<Grant>) -> RbacConfig {
    RbacConfig { grants }
}

fn denial(decision: Decision) -> String {
    match decision {
        Decision::Deny(reason) => reason,
        Decision::Allow => panic!("allowed"),
    }
}

#[test]
fn each_role_allows_exactly_its_operations_on_any_resource() {
    for role in Role::ALL {
        let rbac = config(vec![grant(ALICE, *role)]);
        for operation in op::ALL {
            for resource in ["", STATE_MACHINE, "key/a", "member/3"] {
                let decision = rbac.decide(ALICE, operation, resource);
                assert_eq!(
                    decision == Decision::Allow,
                    role.allows(operation),
                    "{role} × {operation} on {resource:?}: {decision:?}"
                );
            }
        }
        assert!(matches!(
            rbac.decide(ALICE, "data.delete", ""),
            Decision::Deny(_)
        ));
    }
}

#[test]
fn a_caller_no_grant_names_is_denied_by_default() {
    let rbac = config(vec![grant(ALICE, Role::Admin)]);
    assert_eq!(
        denial(rbac.decide(BOB, op::HEALTH_READ, "")),
        "rbac: no grant names caller b0b0000000… (rbac denies by default); an admin can add one \
         with `plugin deploy --kind policy --config FILE`"
    );
    assert!(matches!(
        config(vec![]).decide(ALICE, op::HEALTH_READ, ""),
        Decision::Deny(_)
    ));
    // A short or odd peer string is quoted whole, not sliced mid-character.
    let reason = denial(rbac.decide("é", op::HEALTH_READ, ""));
    assert!(reason.contains("caller é…"), "{reason}");
}

#[test]
fn peers_compare_case_insensitively() {
    let rbac = config(vec![grant(&ALICE.to_uppercase(), Role::Monitor)]);
    assert_eq!(rbac.decide(ALICE, op::METRICS_READ, ""), Decision::Allow);
}

#[test]
fn a_wildcard_grant_applies_to_every_caller_alongside_named_ones() {
    let rbac = config(vec![
        grant("*", Role::Monitor),
        grant(ALICE, Role::MemberManager),
    ]);
    assert_eq!(rbac.decide(BOB, op::METRICS_READ, ""), Decision::Allow);
    assert_eq!(rbac.decide(ALICE, op::METRICS_READ, ""), Decision::Allow);
    assert_eq!(
        rbac.decide(ALICE, op::MEMBER_ADD, "member/4"),
        Decision::Allow
    );
    assert_eq!(
        denial(rbac.decide(BOB, op::MEMBER_ADD, "member/4")),
        r#"rbac: grant "grant #1" (role monitor) does not allow member.add"#
    );
}

#[test]
fn operations_narrow_the_role() {
    let mut narrowed = grant(ALICE, Role::Observer);
    narrowed.name = Some("dashboard".to_string());
    narrowed.operations = strings(&[op::STATUS_READ, op::METRICS_READ]);
    let rbac = config(vec![narrowed]);
    assert_eq!(rbac.decide(ALICE, op::STATUS_READ, ""), Decision::Allow);
    assert_eq!(
        denial(rbac.decide(ALICE, op::DATA_READ, STATE_MACHINE)),
        r#"rbac: grant "dashboard" (role observer) allows only the operations ["status.read", "metrics.read"], not data.read"#
    );
    assert_eq!(
        denial(rbac.decide(ALICE, op::DATA_WRITE, STATE_MACHINE)),
        r#"rbac: grant "dashboard" (role observer) does not allow data.write"#
    );
}

#[test]
fn prefix_rules_limit_data_requests_to_the_keys_under_them() {
    let mut app = grant(ALICE, Role::Admin);
    app.name = Some("app-writer".to_string());
    app.read_prefixes = strings(&["app/"]);
    app.write_prefixes = strings(&["app/"]);
    let rbac = config(vec![app]);
    let allowed = [
        (op::DATA_WRITE, "key/app/x"),
        (op::DATA_READ, "key/app/y"),
        (op::DATA_READ, "prefix/app/"),
        (op::DATA_READ, "prefix/app/deeper"),
        (op::DATA_WRITE, "prefix/app/"),
    ];
    for (operation, resource) in allowed {
        assert_eq!(
            rbac.decide(ALICE, operation, resource),
            Decision::Allow,
            "{operation} {resource}"
        );
    }
    let refused = [
        (op::DATA_WRITE, "key/sys/x"),
        (op::DATA_READ, "key/sys/x"),
        (op::DATA_READ, "prefix/"),
        (op::DATA_READ, "prefix/ap"),
        (op::DATA_WRITE, "key/app"),
        (op::DATA_WRITE, STATE_MACHINE),
        (op::DATA_READ, ""),
        (op::DATA_READ, "key/app/%zz"),
    ];
    for (operation, resource) in refused {
        assert!(
            matches!(rbac.decide(ALICE, operation, resource), Decision::Deny(_)),
            "{operation} {resource}"
        );
    }
    assert_eq!(
        denial(rbac.decide(ALICE, op::DATA_WRITE, "key/sys/x")),
        r#"rbac: grant "app-writer" (role admin) allows data.write only under write_prefixes ["app/"], and key/sys/x is outside them"#
    );
    assert_eq!(
        denial(rbac.decide(ALICE, op::DATA_READ, STATE_MACHINE)),
        r#"rbac: grant "app-writer" (role admin) allows data.read only under read_prefixes ["app/"], and state-machine is outside them (the state machine does not name the keys this request touches)"#
    );
    let reason = denial(rbac.decide(ALICE, op::DATA_READ, "key/app/%zz"));
    assert!(
        reason.ends_with("(it is not a key/… or prefix/… name)"),
        "{reason}"
    );
    // The rules are per operation, and other operations carry no prefix rule.
    assert_eq!(
        rbac.decide(ALICE, op::MEMBER_ADD, "member/2"),
        Decision::Allow
    );
}

#[test]
fn a_prefix_rule_on_one_side_leaves_the_other_unlimited() {
    let mut reader = grant(ALICE, Role::Admin);
    reader.write_prefixes = strings(&["app/", "tmp/"]);
    let rbac = config(vec![reader]);
    assert_eq!(
        rbac.decide(ALICE, op::DATA_READ, STATE_MACHINE),
        Decision::Allow
    );
    assert_eq!(
        rbac.decide(ALICE, op::DATA_WRITE, "key/tmp/1"),
        Decision::Allow
    );
    assert_eq!(
        rbac.decide(ALICE, op::DATA_WRITE, &resource::key(b"app/\xff")),
        Decision::Allow
    );
    assert!(matches!(
        rbac.decide(ALICE, op::DATA_WRITE, "key/etc"),
        Decision::Deny(_)
    ));
}

#[test]
fn prefixes_match_non_ascii_keys_through_the_escape() {
    let mut grant = grant(ALICE, Role::Admin);
    grant.write_prefixes = strings(&["é/", "a b"]);
    let rbac = config(vec![grant]);
    assert_eq!(
        rbac.decide(ALICE, op::DATA_WRITE, &resource::key("é/x".as_bytes())),
        Decision::Allow
    );
    assert_eq!(
        rbac.decide(ALICE, op::DATA_WRITE, &resource::key(b"a b c")),
        Decision::Allow
    );
    assert!(matches!(
        rbac.decide(ALICE, op::DATA_WRITE, &resource::key(b"a%20b")),
        Decision::Deny(_)
    ));
}

#[test]
fn any_grant_naming_the_caller_suffices_and_denials_list_each_briefly() {
    let rbac = config(vec![
        grant(ALICE, Role::Monitor),
        grant(BOB, Role::Admin),
        grant("*", Role::Observer),
        grant(ALICE, Role::MemberManager),
    ]);
    assert_eq!(rbac.decide(ALICE, op::DATA_READ, "key/x"), Decision::Allow);
    assert_eq!(
        rbac.decide(ALICE, op::MEMBER_ROLE, "member/2"),
        Decision::Allow
    );
    assert_eq!(
        denial(rbac.decide(ALICE, op::PLUGIN_DEPLOY, "plugin/policy")),
        "rbac: grant \"grant #1\" (role monitor) does not allow plugin.deploy; grant \"grant #3\" \
         (role observer) does not allow plugin.deploy; grant \"grant #4\" (role member-manager) \
         does not allow plugin.deploy"
    );
    let many = config((0..6).map(|_| grant(ALICE, Role::Monitor)).collect());
    let reason = denial(many.decide(ALICE, op::LOG_READ, ""));
    assert!(
        reason.ends_with("; 3 more grants do not allow it either"),
        "{reason}"
    );
    assert_eq!(
        reason.matches("does not allow log.read").count(),
        3,
        "{reason}"
    );
}

std::thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Counts this thread's allocations, to show that allowing allocates nothing.
struct Counting;

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

#[test]
fn allowing_allocates_nothing() {
    let mut app = grant(ALICE, Role::Admin);
    app.operations = strings(&[op::DATA_WRITE, op::DATA_READ]);
    app.write_prefixes = strings(&["sys/", "app/"]);
    let rbac = config(vec![
        grant("*", Role::Monitor),
        grant(BOB, Role::Admin),
        app,
    ]);
    let resource = resource::key(b"app/\x00x");
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..10 {
        assert_eq!(
            rbac.decide(ALICE, op::DATA_WRITE, &resource),
            Decision::Allow
        );
        assert_eq!(rbac.decide(ALICE, op::METRICS_READ, ""), Decision::Allow);
    }
    assert_eq!(ALLOCATIONS.with(Cell::get), before);
}

const SMALL_CONFIG: &str = r#"{"grants": [
    {"name": "ops", "peer": "a11ce00000000000000000000000000000000000000000000000000000000000", "role": "admin"},
    {"name": "app", "peer": "b0b0000000000000000000000000000000000000000000000000000000000000", "role": "admin",
     "operations": ["data.read", "data.write"], "read_prefixes": ["app/"], "write_prefixes": ["app/"]},
    {"peer": "*", "role": "monitor"}
]}"#;

#[test]
fn a_borrowed_configuration_decides_as_the_owned_one() {
    let owned = RbacConfig::from_json(SMALL_CONFIG.as_bytes()).unwrap();
    let borrowed = RbacConfig::from_json_borrowed(SMALL_CONFIG.as_bytes()).unwrap();
    for peer in [ALICE, BOB, "c0ffee"] {
        for operation in op::ALL {
            for resource in ["key/app/x", "key/sys/x", "prefix/", STATE_MACHINE, ""] {
                assert_eq!(
                    borrowed.decide(peer, operation, resource),
                    owned.decide(peer, operation, resource),
                    "{peer} {operation} {resource}"
                );
            }
        }
    }
    // A JSON escape cannot be borrowed; the owned parse reads it.
    let escaped = SMALL_CONFIG.replace("app/", "app\\u002f");
    assert!(RbacConfig::from_json_borrowed(escaped.as_bytes()).is_err());
    assert_eq!(RbacConfig::from_json(escaped.as_bytes()).unwrap(), owned);
}

/// The per-call cost the rbac plugin pays natively: parse a small configuration, then decide.
/// `cargo test --release -p iroh-raft-access-types -- --ignored --nocapture --test-threads=1 cost`
#[test]
#[ignore = "a measurement, not a check"]
fn cost_of_parsing_and_deciding() {
    let json = SMALL_CONFIG.as_bytes();
    let resource = resource::key(b"app/user/42");
    let rounds = 200_000;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let rbac = RbacConfig::from_json(core::hint::black_box(json)).unwrap();
        assert_eq!(rbac.decide(BOB, op::DATA_WRITE, &resource), Decision::Allow);
    }
    let owned = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let rbac = RbacConfig::from_json_borrowed(core::hint::black_box(json)).unwrap();
        assert_eq!(rbac.decide(BOB, op::DATA_WRITE, &resource), Decision::Allow);
    }
    let borrowed = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let _: serde::de::IgnoredAny = serde_json::from_slice(core::hint::black_box(json)).unwrap();
    }
    let syntax = start.elapsed() / rounds;
    std::println!(
        "parse + decide ({} bytes of JSON): owned {owned:?}, borrowed {borrowed:?}; \
         the JSON syntax alone {syntax:?}",
        json.len()
    );
}
