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
//! | `leak:<n>` | leaks `n` KiB of heap, answers where its next 16-byte allocation lands |
//! | `burn:<n>` | spins `n` turns, answers `burnt` |
//! | `append:<key>=<value>` | appends `value` to `key`, answers the new value |
//! | anything else | fails with "unknown command", writing nothing |
//!
//! Queries: `get:<key>` answers the value or fails with "not found"; `loop` loops forever;
//! `panic` panics; anything else fails with "unknown query".
//!
//! `migrate` writes `migrating` = `started`, then panics: deploying this plugin over another is
//! refused on every replica, and the write is discarded. If the keyspace holds `migrate:burn` =
//! `<n>` (decimal), `migrate` instead spins `n` turns and succeeds: a long migration.
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
            Some(Order::Leak { kibibytes }) => Ok(leak(kibibytes)),
            Some(Order::Burn { turns }) => {
                burn(turns);
                Ok(b"burnt".to_vec())
            }
            Some(Order::Append { key, value }) => {
                let mut now = ctx.get(key.as_bytes()).unwrap_or_default();
                now.extend_from_slice(value.as_bytes());
                ctx.put(key.as_bytes(), &now)?;
                Ok(now)
            }
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
        let burn_turns = ctx
            .get(b"migrate:burn")
            .and_then(|turns| core::str::from_utf8(&turns).ok()?.parse::<u64>().ok());
        if let Some(turns) = burn_turns {
            burn(turns);
            return Ok(());
        }
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
    Leak { kibibytes: usize },
    Burn { turns: u64 },
    Append { key: &'a str, value: &'a str },
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
        "leak" => {
            return Some(Order::Leak {
                kibibytes: argument.parse().ok()?,
            });
        }
        "burn" => {
            return Some(Order::Burn {
                turns: argument.parse().ok()?,
            });
        }
        "append" => {
            let (key, value) = argument.split_once('=')?;
            return Some(Order::Append { key, value });
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

/// Leaks `kibibytes` KiB, then answers the address of a fresh 16-byte allocation: a heap that
/// carried state from one entry to the next would answer differently as entries are regrouped.
fn leak(kibibytes: usize) -> Vec<u8> {
    let hoard: Vec<u8> = black_box(vec![3; kibibytes << 10]);
    core::mem::forget(hoard);
    let probe = black_box(alloc::boxed::Box::new([0u8; 16]));
    let at = &*probe as *const [u8; 16] as usize;
    alloc::format!("{at:#x}").into_bytes()
}

/// Spins `turns` times: fuel in proportion to `turns`.
fn burn(turns: u64) {
    let mut turn: u64 = 0;
    while black_box(turn) < turns {
        turn += 1;
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
        assert_eq!(parse(b"leak:64"), Some(Order::Leak { kibibytes: 64 }));
        assert_eq!(parse(b"burn:7"), Some(Order::Burn { turns: 7 }));
        assert_eq!(
            parse(b"append:k=v"),
            Some(Order::Append {
                key: "k",
                value: "v"
            })
        );
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
