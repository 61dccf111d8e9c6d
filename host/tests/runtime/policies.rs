//! The bundled policies through the real wasmtime host: rbac reads its configuration once per
//! instance and keeps it across calls, whatever later calls lower; a policy that traps or loops
//! denies and the next decision works again.

use bytes::Bytes;
use iroh_raft::proto::{op, resource};
use iroh_raft::{CachedPolicy, Decision, PluginEngine, bundled};

const MAX_CACHED_RESOURCE: usize = CachedPolicy::MAX_CACHED_RESOURCE;

const OPS: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
const APP: &str = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";

fn config() -> Bytes {
    Bytes::from(format!(
        r#"{{"grants": [
            {{"name": "ops", "peer": "{OPS}", "role": "admin"}},
            {{"name": "app", "peer": "{APP}", "role": "admin",
              "operations": ["data.read", "data.write"], "write_prefixes": ["app/"]}}
        ]}}"#
    ))
}

#[test]
fn rbac_keeps_its_prepared_configuration_across_calls_of_any_size() {
    let engine = PluginEngine::new(None).expect("engine");
    let mut policy = engine
        .load_policy("rbac", bundled::RBAC)
        .expect("load rbac")
        .instance(config());
    for n in 0..2_000usize {
        // Every so often a huge resource: the arguments of that call take far more memory than
        // the first call's, so the window grows over where the first call allocated.
        let key = if n % 97 == 0 {
            format!("app/{}", "x".repeat(200_000 + n))
        } else {
            format!("app/{n}")
        };
        let inside = resource::key(key.as_bytes());
        let outside = resource::key(format!("sys/{n}").as_bytes());
        assert_eq!(
            policy.authorize(APP, op::DATA_WRITE, &inside),
            Decision::Allow,
            "call {n}"
        );
        let Decision::Deny(reason) = policy.authorize(APP, op::DATA_WRITE, &outside) else {
            panic!("call {n}: a write outside app/ was allowed");
        };
        assert!(reason.contains("grant \"app\""), "call {n}: {reason}");
        assert_eq!(
            policy.authorize(OPS, op::MEMBER_ADD, "member/4"),
            Decision::Allow,
            "call {n}"
        );
    }
}

#[test]
fn an_invalid_rbac_configuration_denies_everything_and_says_why() {
    let engine = PluginEngine::new(None).expect("engine");
    let compiled = engine
        .load_policy("rbac", bundled::RBAC)
        .expect("load rbac");
    for (config, expected) in [
        (&b""[..], "deployed without a configuration"),
        (
            b"{\"grants\": [{\"peer\": \"nope\", \"role\": \"admin\"}]}",
            "configuration is invalid",
        ),
    ] {
        let mut policy = compiled.instance(Bytes::from_static(config));
        for _ in 0..3 {
            let Decision::Deny(reason) = policy.authorize(OPS, op::STATUS_READ, "") else {
                panic!("{config:?} allowed");
            };
            assert!(reason.contains(expected), "{reason}");
        }
    }
}

#[test]
fn a_trapping_or_looping_policy_denies_and_recovers_on_a_fresh_instance() {
    let engine = PluginEngine::new(None).expect("engine");
    let compiled = engine
        .load_policy("faulty", bundled::FAULTY_POLICY)
        .expect("load the faulty policy");
    for (config, expected) in [(&b"trap"[..], "trapped"), (b"loop", "ran out of fuel")] {
        let mut policy = compiled.instance(Bytes::from_static(config));
        for _ in 0..2 {
            let Decision::Deny(reason) = policy.authorize(OPS, op::STATUS_READ, "") else {
                panic!("{config:?} allowed");
            };
            assert!(reason.contains(expected), "{reason}");
        }
    }
    let mut fine = compiled.instance(Bytes::from_static(b"allow"));
    assert_eq!(
        fine.authorize(OPS, op::DATA_WRITE, "key/x"),
        Decision::Allow
    );
}

#[test]
fn bug_a_trapping_decision_was_cached_and_locked_the_caller_out_now_only_decisions_are_cached() {
    let engine = PluginEngine::new(None).expect("engine");
    let compiled = engine
        .load_policy("faulty", bundled::FAULTY_POLICY)
        .expect("load the faulty policy");
    let caller = iroh::SecretKey::from_bytes(&[3; 32]).public();
    let mut trapping = CachedPolicy::new(compiled.instance(Bytes::from_static(b"trap")));
    for _ in 0..3 {
        let Decision::Deny(reason) = trapping.decide(&caller, op::STATUS_READ, "") else {
            panic!("a trapping policy allowed");
        };
        assert!(reason.contains("trapped"), "{reason}");
    }
    assert_eq!(
        trapping.cached(),
        0,
        "a fault is this request's, never cached"
    );

    let mut allowing = CachedPolicy::new(compiled.instance(Bytes::from_static(b"allow")));
    let short = resource::key(b"app/1");
    assert_eq!(
        allowing.decide(&caller, op::DATA_WRITE, &short),
        Decision::Allow
    );
    assert_eq!(allowing.cached(), 1, "the policy's decision is cached");
    assert_eq!(
        allowing.decide(&caller, op::DATA_WRITE, &short),
        Decision::Allow
    );
    assert_eq!(allowing.cached(), 1, "and answered from the cache");
}

#[test]
fn bug_decisions_on_invented_long_keys_grew_the_cache_now_long_resources_are_not_cached() {
    let engine = PluginEngine::new(None).expect("engine");
    let rbac = engine
        .load_policy("rbac", bundled::RBAC)
        .expect("load rbac");
    let app = iroh::SecretKey::from_bytes(&[0xa0; 32]).public();
    let config = Bytes::from(format!(
        r#"{{"grants": [{{"name": "app", "peer": "{app}", "role": "admin",
            "operations": ["data.write"], "write_prefixes": ["app/"]}}]}}"#
    ));
    let mut policy = CachedPolicy::new(rbac.instance(config));
    for n in 0..50usize {
        let long = resource::key(format!("sys/{n}/{}", "x".repeat(MAX_CACHED_RESOURCE)).as_bytes());
        assert!(long.len() > MAX_CACHED_RESOURCE);
        let Decision::Deny(reason) = policy.decide(&app, op::DATA_WRITE, &long) else {
            panic!("a write outside app/ was allowed");
        };
        assert!(reason.contains("grant \"app\""), "{reason}");
    }
    assert_eq!(policy.cached(), 0, "no decision on a long resource is kept");
    assert_eq!(
        policy.decide(&app, op::DATA_WRITE, &resource::key(b"app/x")),
        Decision::Allow
    );
    assert_eq!(policy.cached(), 1);
}
