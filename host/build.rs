//! Builds the bundled plugins (`plugins/`) for `wasm32-wasip2` and hands their `.wasm` files to the
//! host crate, which embeds them as defaults. Runs a nested cargo with its own target directory
//! (`target/plugins`), as wasmtime's test-programs do, so the outer build's lock is never waited on.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Plugins built together share one feature set of the SDK, so each world gets its own cargo run
/// (a component must carry only its own world's type information).
const GROUPS: &[&[(&str, &str)]] = &[
    &[
        ("iroh-raft-plugin-kv", "kv"),
        ("iroh-raft-plugin-kv-v2", "kv_v2"),
        ("iroh-raft-plugin-counter", "counter"),
        ("iroh-raft-plugin-noop", "noop"),
        ("iroh-raft-plugin-faulty", "faulty"),
        ("iroh-raft-example-tally", "example_tally"),
    ],
    &[
        ("iroh-raft-plugin-allow-all", "allow_all"),
        ("iroh-raft-plugin-read-only", "read_only"),
        ("iroh-raft-plugin-rbac", "rbac"),
        ("iroh-raft-plugin-faulty-policy", "faulty_policy"),
    ],
    &[
        ("iroh-raft-plugin-fs-backup", "fs_backup"),
        ("iroh-raft-plugin-lz4-backup", "lz4_backup"),
        ("iroh-raft-plugin-faulty-backup", "faulty_backup"),
    ],
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .parent()
        .expect("host/ sits inside the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));
    for watched in [
        "plugins",
        "plugin-api",
        "wit",
        "examples/custom-state-machine",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    check_target_installed();

    let target_dir = workspace.join("target").join("plugins");
    for group in GROUPS {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(&workspace)
            .args([
                "build",
                "--target",
                TARGET,
                "--profile",
                "plugin",
                "--target-dir",
            ])
            .arg(&target_dir);
        for (package, _) in *group {
            command.args(["-p", package]);
        }
        // The outer build's flags and wrappers are for the host target, not for wasm.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
        ] {
            command.env_remove(var);
        }
        let status = command
            .status()
            .unwrap_or_else(|e| panic!("could not run cargo to build the bundled plugins: {e}"));
        if !status.success() {
            panic!(
                "building the bundled plugins for {TARGET} failed (see the errors above); \
                 if the target is missing, run `rustup target add {TARGET}`"
            );
        }
        for (package, file) in *group {
            let built = target_dir
                .join(TARGET)
                .join("plugin")
                .join(format!("{}.wasm", package.replace('-', "_")));
            let dest = out_dir.join(format!("{file}.wasm"));
            std::fs::copy(&built, &dest).unwrap_or_else(|e| {
                panic!("bundled plugin {} was not built: {e}", built.display())
            });
        }
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// Fails early, with the fix, when the wasm target is not installed.
fn check_target_installed() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    if let Some(sysroot) = sysroot {
        let lib = Path::new(&sysroot).join("lib").join("rustlib").join(TARGET);
        if !lib.exists() {
            panic!(
                "\n\nThe bundled plugins are built for {TARGET}, which this toolchain lacks.\n\
                 Install it with:\n\n    rustup target add {TARGET}\n\n"
            );
        }
    }
}
