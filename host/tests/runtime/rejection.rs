//! Components that must be refused, each with its own error and a message that says what to do;
//! and the compile cache that spares a restart from recompiling.

use iroh_raft::proto::PluginKind;
use iroh_raft::{PluginEngine, PluginError, bundled};

fn engine() -> PluginEngine {
    PluginEngine::new(None).expect("engine")
}

#[test]
fn garbage_bytes_are_not_wasm() {
    let err = engine()
        .validate(PluginKind::StateMachine, b"#!/bin/sh\necho hi\n")
        .unwrap_err();
    assert!(matches!(err, PluginError::NotWasm), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"), "{err}");
}

#[test]
fn a_core_module_is_not_a_component() {
    // The smallest valid core module: magic and version 1.
    let err = engine()
        .validate(PluginKind::StateMachine, b"\0asm\x01\0\0\0")
        .unwrap_err();
    assert!(matches!(err, PluginError::CoreModule), "{err}");
    assert!(err.to_string().contains("core WebAssembly module"), "{err}");
}

#[test]
fn a_broken_component_is_invalid() {
    let mut wasm = bundled::COUNTER.to_vec();
    wasm.truncate(wasm.len() / 2);
    let err = engine()
        .validate(PluginKind::StateMachine, &wasm)
        .unwrap_err();
    assert!(matches!(err, PluginError::Invalid { .. }), "{err}");
}

#[test]
fn a_policy_is_not_a_state_machine_and_says_how_to_deploy_it() {
    let err = engine()
        .load_state_machine("x", bundled::ALLOW_ALL)
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            PluginError::WrongWorld {
                expected: PluginKind::StateMachine,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("policy plugin"), "{message}");
    assert!(message.contains("--kind policy"), "{message}");
}

#[test]
fn a_state_machine_is_not_a_policy() {
    let err = engine()
        .validate(PluginKind::Policy, bundled::KV)
        .unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::WrongWorld {
                expected: PluginKind::Policy,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--kind state-machine"), "{err}");
}

#[test]
fn every_bundled_plugin_validates_as_its_kind_and_imports_only_host_interfaces() {
    let engine = engine();
    for (name, kind, wasm) in bundled::ALL {
        let info = engine
            .validate(*kind, wasm)
            .unwrap_or_else(|e| panic!("bundled plugin {name} refused: {e}"));
        assert!(
            info.imports
                .iter()
                .all(|i| i.starts_with("iroh-raft:plugin/")),
            "{name} imports {:?}",
            info.imports
        );
    }
}

#[test]
fn the_compile_cache_spares_a_second_compile() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = PluginEngine::new(Some(dir.path())).expect("engine");
    first.load_state_machine("kv", bundled::KV).expect("load");
    assert_eq!(first.compile_stats(), (1, 0));
    // A restarted node: a new engine over the same cache directory.
    let second = PluginEngine::new(Some(dir.path())).expect("engine");
    second.load_state_machine("kv", bundled::KV).expect("load");
    assert_eq!(second.compile_stats(), (0, 1));
    // A corrupt cache entry is recompiled, not trusted.
    for entry in std::fs::read_dir(dir.path()).expect("read cache") {
        std::fs::write(entry.expect("entry").path(), b"junk").expect("corrupt");
    }
    let third = PluginEngine::new(Some(dir.path())).expect("engine");
    third.load_state_machine("kv", bundled::KV).expect("load");
    assert_eq!(third.compile_stats(), (1, 0));
}
