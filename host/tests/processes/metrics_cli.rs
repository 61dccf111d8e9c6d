//! The Prometheus exposition of a real node process, checked with Python's `prometheus_client`
//! parser (the reference implementation, installed by the README's test set-up): what
//! `iroh-raft metrics --prometheus` prints, and what `node --metrics-http` serves to a real HTTP
//! client (`urllib.request`).

use std::io::Write;
use std::process::{Command, Stdio};

use iroh_raft::format_node_address;
use serde_json::Value;

use crate::support::{cli, free_port, spawn};

/// Parses the exposition with `prometheus_client` and prints, as JSON, each family's type and
/// samples. `stdin`: the text comes on stdin; `http URL`: it is fetched from URL, with the
/// response's content type and the status of another path.
const PARSE: &str = r#"
import json, sys, urllib.request, urllib.error
from prometheus_client.parser import text_string_to_metric_families as parse

def families(text):
    return {f.name: {"type": f.type,
                     "samples": [[s.name, s.labels, s.value] for s in f.samples]}
            for f in parse(text)}

if sys.argv[1] == "stdin":
    print(json.dumps({"families": families(sys.stdin.read())}))
else:
    url = sys.argv[2]
    with urllib.request.urlopen(url, timeout=10) as response:
        content_type = response.headers.get("Content-Type")
        status = response.status
        body = response.read().decode()
    try:
        urllib.request.urlopen(url.replace("/metrics", "/elsewhere"), timeout=10)
        other = 200
    except urllib.error.HTTPError as error:
        other = error.code
    print(json.dumps({"status": status, "content_type": content_type, "other": other,
                      "families": families(body)}))
"#;

fn python(args: &[&str], stdin: Option<&str>) -> Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(PARSE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (the README's test set-up installs prometheus-client)");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(
        output.status.success(),
        "the prometheus_client parser refused it: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json from the parser")
}

/// The family `name` (as the parser names it: counters without `_total`), of type `kind`.
fn family<'a>(parsed: &'a Value, name: &str, kind: &str) -> &'a Value {
    let family = &parsed["families"][name];
    assert_eq!(family["type"], kind, "family {name} in {parsed}");
    family
}

/// The value of the sample `name` whose labels include every `(key, value)` of `labels`.
fn sample(family: &Value, name: &str, labels: &[(&str, &str)]) -> f64 {
    family["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .find(|s| s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {family}"))[2]
        .as_f64()
        .expect("a number")
}

/// The checks both ways of reading the exposition must pass, for node 1 after `writes` puts.
fn check(parsed: &Value, writes: f64) {
    let node = [("node", "1")];
    let applied = family(parsed, "iroh_raft_raft_applied_index", "gauge");
    assert!(sample(applied, "iroh_raft_raft_applied_index", &node) >= writes);
    let state = family(parsed, "iroh_raft_raft_state", "gauge");
    assert_eq!(
        sample(
            state,
            "iroh_raft_raft_state",
            &[("node", "1"), ("state", "leader")]
        ),
        1.0
    );
    let fsync = family(
        parsed,
        "iroh_raft_storage_fsync_duration_seconds",
        "histogram",
    );
    let count = sample(
        fsync,
        "iroh_raft_storage_fsync_duration_seconds_count",
        &node,
    );
    assert!(count >= 1.0, "{fsync}");
    assert_eq!(
        sample(
            fsync,
            "iroh_raft_storage_fsync_duration_seconds_bucket",
            &[("node", "1"), ("le", "+Inf")]
        ),
        count
    );
    let proposals = family(
        parsed,
        "iroh_raft_raft_proposal_duration_seconds",
        "histogram",
    );
    assert!(
        sample(
            proposals,
            "iroh_raft_raft_proposal_duration_seconds_count",
            &node
        ) >= writes
    );
    family(
        parsed,
        "iroh_raft_plugin_apply_duration_seconds",
        "histogram",
    );
    let sent = family(parsed, "iroh_raft_network_sent_bytes", "counter");
    assert!(
        sample(
            sent,
            "iroh_raft_network_sent_bytes_total",
            &[("node", "1"), ("alpn", "iroh-raft-mgmt/0")]
        ) > 0.0
    );
    let requests = family(parsed, "iroh_raft_management_requests", "counter");
    assert!(
        sample(
            requests,
            "iroh_raft_management_requests_total",
            &[("node", "1"), ("operation", "data.write")]
        ) >= writes
    );
    family(parsed, "iroh_raft_plugin_active", "gauge");
    family(parsed, "iroh_raft_storage_database_size_bytes", "gauge");
    // The node process's CPU, in seconds, and its peak memory: a node that served the writes
    // above has used some of both.
    let cpu = family(parsed, "iroh_raft_process_cpu_seconds", "counter");
    assert!(sample(cpu, "iroh_raft_process_cpu_seconds_total", &[("node", "1")]) > 0.0);
    let memory = family(
        parsed,
        "iroh_raft_process_max_resident_memory_bytes",
        "gauge",
    );
    assert!(
        sample(
            memory,
            "iroh_raft_process_max_resident_memory_bytes",
            &[("node", "1")]
        ) > f64::from(1u32 << 20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_parses_with_the_reference_parser_from_the_cli_and_over_http() {
    tokio::time::timeout(std::time::Duration::from_secs(180), scenario())
        .await
        .expect("finishes within 180 s");
}

async fn scenario() {
    let root = tempfile::tempdir().expect("temp dir");
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("probe a tcp port")
        .local_addr()
        .expect("addr");
    let mut node = spawn(
        &root.path().join("n1"),
        free_port(),
        &[
            "--init".to_string(),
            "--metrics-http".to_string(),
            http.to_string(),
        ],
    );
    let address = format_node_address(&node.addr);
    for i in 0..3 {
        let put = cli(&address, &["kv", "put", &format!("k{i}"), "v"]);
        assert!(put.status.success(), "{put:?}");
    }

    let printed = cli(&address, &["metrics", "--prometheus"]);
    assert!(printed.status.success(), "{printed:?}");
    let text = String::from_utf8(printed.stdout).expect("utf-8");
    check(&python(&["stdin"], Some(&text)), 3.0);

    let url = format!("http://{http}/metrics");
    let scraped = tokio::task::spawn_blocking(move || python(&["http", &url], None))
        .await
        .expect("scrape");
    assert_eq!(scraped["status"], 200);
    assert_eq!(scraped["other"], 404);
    assert!(
        scraped["content_type"]
            .as_str()
            .expect("a content type")
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        scraped["content_type"]
    );
    check(&scraped, 3.0);
    node.kill();
}
