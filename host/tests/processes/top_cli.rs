//! `iroh-raft top` under a real pseudo-terminal (Python's `pty`): it draws the members a few
//! times, quits with status 0 on `q` and on Ctrl-C, and leaves the terminal as it found it.

use iroh_raft::format_node_address;
use serde_json::Value;

use crate::support::{admin_key_path, cli, free_port, spawn};

/// Runs `BINARY top` in a pty until it drew `draws` times, types `KEYS`, and prints as JSON its
/// exit code, how often it drew, and everything it wrote.
const UNDER_PTY: &str = r#"
import json, os, pty, select, sys, time
binary, node, key, keys, draws = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
env = dict(os.environ, IROH_RAFT_NODE=node, IROH_RAFT_KEY=key, RUST_LOG="error", TERM="xterm")
pid, fd = pty.fork()
if pid == 0:
    os.execve(binary, [binary, "top", "--interval-ms", "200"], env)
out = b""
def pump(seconds):
    global out
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            out += chunk
deadline = time.time() + 30
while time.time() < deadline and out.count(b"iroh-raft top:") < draws:
    pump(0.1)
os.write(fd, keys.encode())
code = None
end = time.time() + 10
while time.time() < end and code is None:
    pump(0.05)
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        code = os.waitstatus_to_exitcode(status)
if code is None:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
pump(0.2)
print(json.dumps({"code": code, "draws": out.count(b"iroh-raft top:"),
                  "out": out.decode(errors="replace")}))
"#;

fn run_top(address: &str, keys: &str) -> Value {
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(UNDER_PTY)
        .arg(env!("CARGO_BIN_EXE_iroh-raft"))
        .arg(address)
        .arg(admin_key_path())
        .arg(keys)
        .arg("4")
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_draws_the_members_and_quits_cleanly_on_q_and_ctrl_c() {
    tokio::time::timeout(std::time::Duration::from_secs(120), scenario())
        .await
        .expect("finishes within 120 s");
}

async fn scenario() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut node = spawn(
        &root.path().join("n1"),
        free_port(),
        &["--init".to_string()],
    );
    let address = format_node_address(&node.addr);
    let put = cli(&address, &["kv", "put", "k", "v"]);
    assert!(put.status.success(), "{put:?}");
    for (keys, how) in [("q", "q"), ("\u{3}", "Ctrl-C")] {
        let address = address.clone();
        let ran = tokio::task::spawn_blocking(move || run_top(&address, keys))
            .await
            .expect("pty run");
        let out = ran["out"].as_str().expect("output");
        assert_eq!(ran["code"], 0, "top exits 0 on {how}: {out}");
        assert!(ran["draws"].as_u64().expect("draws") >= 4, "{out}");
        assert!(
            out.lines().any(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.len() > 2 && cells[0] == "1" && cells[1] == "leader"
            }),
            "member 1 is shown as the leader: {out}"
        );
        assert!(out.contains("1 members, leader 1"), "{out}");
        // The alternate screen was left and the cursor shown again.
        assert!(
            out.contains("\u{1b}[?1049l") && out.contains("\u{1b}[?25h"),
            "{out:?}"
        );
    }
    node.kill();
}
