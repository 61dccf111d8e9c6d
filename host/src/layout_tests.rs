//! The house rules, checked on the source tree: `proto/` is a leaf that imports nothing else of
//! the crate, and no library file grows past 450 lines (the binary's `main.rs` stays under 150);
//! and where the README says the bundled plugins are built, they are.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The paths a file names that lead out of `proto`: `crate::x` for any `x` but `proto`, and
/// `super::` from the module root `proto.rs` itself.
fn leaks(text: &str, is_root: bool) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if !after.starts_with("proto") {
                found.push(format!("line {}: {}", number + 1, line.trim()));
            }
            rest = after;
        }
        if is_root && code.contains("super::") {
            found.push(format!("line {}: {}", number + 1, line.trim()));
        }
    }
    found
}

#[test]
fn proto_imports_nothing_else_of_the_crate() {
    let mut files = vec![src().join("proto.rs")];
    rust_files(&src().join("proto"), &mut files);
    assert!(files.len() > 10, "proto/ has {} files", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for leak in leaks(&text, file.ends_with("proto.rs")) {
            problems.push(format!("{}: {leak}", file.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "proto/ must import nothing else of the crate:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_leak_check_sees_leaks() {
    assert!(leaks("use crate::proto::Member;\nuse super::Reply;", false).is_empty());
    assert_eq!(leaks("use crate::raft::Member;", false).len(), 1);
    assert_eq!(leaks("    let x = crate::net::alpn::RAFT;", false).len(), 1);
    assert_eq!(leaks("use super::x;", true).len(), 1);
    assert!(leaks("// see crate::node for why", false).is_empty());
}

#[test]
fn no_library_file_passes_450_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut long = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let in_bin = file.components().any(|c| c.as_os_str() == "bin");
        let limit = if in_bin && name == "main.rs" {
            149
        } else {
            450
        };
        if !name.ends_with("_tests.rs") && lines > limit {
            long.push(format!(
                "{} has {lines} lines (limit {limit})",
                file.display()
            ));
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}

#[test]
fn the_readme_says_where_the_bundled_plugins_are_built() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(workspace.join("README.md")).expect("README");
    let dir = "target/plugins/wasm32-wasip2/plugin/";
    assert!(readme.contains(dir), "the README no longer names {dir}");
    // build.rs ran before this test was compiled, so the plugins are there.
    let kv = workspace.join(dir).join("iroh_raft_plugin_kv.wasm");
    assert!(
        kv.is_file(),
        "{} is not where the README says",
        kv.display()
    );
}
