//! Test plugin: a real state machine that misbehaves on command, so the host's handling of
//! runaway, crashing and failing guests can be tested against a genuine component.
//!
//! Commands are raw UTF-8 bytes:
//!
//! | command | effect |
//! | --- | --- |
//! | `put:<key>=<value>` | writes `key` = `value`, answers `ok` |
//! | `loop:<key>` | writes `key` = `started`, then loops forever |
//! | `oom:<key>` | writes `key` = `started`, then allocates until allocation fails |
//! | `panic:<key>` | writes `key` = `started`, then panics |
//! | `unreachable:<key>` | writes `key` = `started`, then executes `unreachable` |
//! | `recurse:<key>` | writes `key` = `started`, then recurses until the stack overflows |
//! | `fail` | fails with "failed on purpose", writing nothing |
//! | `empty-key` | puts an empty key and fails with the host's refusal |
//! | `flood:<n>` | puts `n` MiB values under new keys forever, ignoring refusals |
//! | anything else | fails with "unknown command", writing nothing |
//!
//! Queries: `get:<key>` answers the value or fails with "not found"; `loop` loops forever;
//! `panic` panics; anything else fails with "unknown query".
//!
//! `migrate` writes `migrating` = `started`, then panics: deploying this plugin over another is
//! refused on every replica, and the write is discarded.
//!
//! The misbehaviour goes through `core::hint::black_box`, so the optimizer cannot remove it.
#![no_std]
extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::hint::black_box;

use iroh_raft_plugin_api::{ApplyContext, Error, QueryContext, Result, StateMachine};

struct Faulty;

impl StateMachine for Faulty {
    fn apply(ctx: &mut ApplyContext, _index: u64, command: &[u8]) -> Result<Vec<u8>> {
        match parse(command) {
            Some(Order::Put { key, value }) => {
                ctx.put(key.as_bytes(), value.as_bytes())?;
                Ok(b"ok".to_vec())
            }
            Some(Order::Misbehave { key, fault }) => {
                ctx.put(key.as_bytes(), b"started")?;
                misbehave(fault)
            }
            Some(Order::EmptyKey) => {
                ctx.put(b"", b"x")?;
                Ok(b"the host took an empty key".to_vec())
            }
            Some(Order::Flood { megabytes }) => flood(ctx, megabytes),
            Some(Order::Fail) => Err(Error::new("failed on purpose")),
            None => Err(Error::new("unknown command")),
        }
    }

    fn query(ctx: &QueryContext, request: &[u8]) -> Result<Vec<u8>> {
        match request {
            b"loop" => spin(),
            b"panic" => panic!("panicked on purpose"),
            _ => match request.strip_prefix(b"get:") {
                Some(key) => ctx.get(key).ok_or_else(|| Error::new("not found")),
                None => Err(Error::new("unknown query")),
            },
        }
    }

    fn migrate(ctx: &mut ApplyContext, _from_version: &str) -> Result<()> {
        ctx.put(b"migrating", b"started")?;
        panic!("migrate panicked on purpose")
    }
}

/// One parsed command.
#[derive(Debug, PartialEq, Eq)]
enum Order<'a> {
    Put { key: &'a str, value: &'a str },
    Misbehave { key: &'a str, fault: Fault },
    Fail,
    EmptyKey,
    Flood { megabytes: usize },
}

/// A way to misbehave after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Loop,
    Oom,
    Panic,
    Unreachable,
    Recurse,
}

fn parse(command: &[u8]) -> Option<Order<'_>> {
    let command = core::str::from_utf8(command).ok()?;
    match command {
        "fail" => return Some(Order::Fail),
        "empty-key" => return Some(Order::EmptyKey),
        _ => {}
    }
    let (verb, argument) = command.split_once(':')?;
    let fault = match verb {
        "put" => {
            let (key, value) = argument.split_once('=')?;
            return Some(Order::Put { key, value });
        }
        "flood" => {
            return Some(Order::Flood {
                megabytes: argument.parse().ok()?,
            });
        }
        "loop" => Fault::Loop,
        "oom" => Fault::Oom,
        "panic" => Fault::Panic,
        "unreachable" => Fault::Unreachable,
        "recurse" => Fault::Recurse,
        _ => return None,
    };
    Some(Order::Misbehave {
        key: argument,
        fault,
    })
}

fn misbehave(fault: Fault) -> ! {
    match fault {
        Fault::Loop => spin(),
        Fault::Oom => exhaust_memory(),
        Fault::Panic => panic!("panicked on purpose"),
        Fault::Unreachable => trap(),
        Fault::Recurse => {
            black_box(recurse(0));
            // `recurse` only returns if its opaque stop condition holds, which it never does.
            trap()
        }
    }
}

/// Puts values of `megabytes` MiB under keys `flood/0`, `flood/1`, ... forever, ignoring refusals:
/// only the host's per-entry write budget stops it.
fn flood(ctx: &mut ApplyContext, megabytes: usize) -> Result<Vec<u8>> {
    let value = vec![7u8; megabytes << 20];
    let mut n = 0u64;
    loop {
        let key = alloc::format!("flood/{n}");
        // A refusal is ignored on purpose: only the host's write budget ends this entry.
        let _ = black_box(ctx.put(key.as_bytes(), black_box(&value)));
        n = n.wrapping_add(1);
    }
}

fn spin() -> ! {
    let mut turns: u64 = 0;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}

/// Holds on to ever more 1 MiB buffers; the failed allocation ends the guest.
fn exhaust_memory() -> ! {
    const MIB: usize = 1 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![1; MIB]));
        black_box(&hoard);
    }
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!("the faulty plugin's `unreachable` command")
}

/// Recurses until the stack overflows. The stop condition is opaque, so the compiler can neither
/// prove the recursion endless nor turn it into a loop, and the frame stays live across the call.
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    if black_box(depth) == u64::MAX {
        return depth;
    }
    let below = recurse(depth + 1);
    black_box(&frame);
    below.wrapping_add(frame[0])
}

iroh_raft_plugin_api::export_state_machine!(Faulty);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse(b"put:k=v=w"),
            Some(Order::Put {
                key: "k",
                value: "v=w"
            })
        );
        let faults = [
            ("loop:k", Fault::Loop),
            ("oom:k", Fault::Oom),
            ("panic:k", Fault::Panic),
            ("unreachable:k", Fault::Unreachable),
            ("recurse:k", Fault::Recurse),
        ];
        for (command, fault) in faults {
            assert_eq!(
                parse(command.as_bytes()),
                Some(Order::Misbehave { key: "k", fault }),
                "{command}"
            );
        }
        assert_eq!(parse(b"fail"), Some(Order::Fail));
        assert_eq!(parse(b"empty-key"), Some(Order::EmptyKey));
        assert_eq!(parse(b"flood:32"), Some(Order::Flood { megabytes: 32 }));
    }

    #[test]
    fn anything_else_is_unknown() {
        for command in [
            &b""[..],
            b"fail:k",
            b"put:no-equals",
            b"jump:k",
            b"loop",
            b"\xff:k",
        ] {
            assert_eq!(parse(command), None, "{command:?}");
        }
    }
}
