//! Identities and access control through the command line, as the README shows them: `whoami`,
//! `auth`, a stranger refused, a deny-all policy and the break-glass recovery with the root key,
//! and `--policy allow-all`.

use iroh_raft::format_node_address;

use crate::support::{cli, cli_as, free_port, spawn, spawn_logging};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `iroh-raft plugin deploy --kind policy WASM --config CONFIG` as the admin; must succeed.
fn deploy_policy(address: &str, wasm: &std::path::Path, config: &std::path::Path) {
    let wasm = wasm.to_str().expect("utf-8");
    let config = config.to_str().expect("utf-8");
    let deployed = cli(
        address,
        &[
            "plugin", "deploy", "--kind", "policy", wasm, "--config", config,
        ],
    );
    assert!(deployed.status.success(), "{deployed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_auth_refusal_and_break_glass_from_the_cli() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut node = spawn(
        &root.path().join("n1"),
        free_port(),
        &["--init".to_string()],
    );
    let address = format_node_address(&node.addr);

    // whoami prints the id of the key the CLI speaks as (created on first use, 0600).
    let fresh = root.path().join("home/.config/iroh-raft/key");
    let whoami = cli_as(&fresh, &address, &["whoami"]);
    assert!(whoami.status.success(), "{whoami:?}");
    let stranger_id = text(&whoami.stdout).trim().to_string();
    assert_eq!(stranger_id.len(), 64, "{stranger_id}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&fresh).expect("key file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let admin_id = text(&cli(&address, &["whoami"]).stdout).trim().to_string();

    // auth shows the default rbac policy with the --init user (the admin key) as Admin.
    let auth = cli(&address, &["auth"]);
    assert!(auth.status.success(), "{auth:?}");
    let shown = text(&auth.stdout);
    assert!(shown.contains("policy       rbac"), "{shown}");
    assert!(
        shown.contains(&admin_id) && shown.contains("admin"),
        "{shown}"
    );
    assert!(shown.contains("(you)"), "{shown}");

    // The stranger is refused, with the rule named.
    let refused = cli_as(&fresh, &address, &["kv", "put", "a", "1"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        text(&refused.stderr).contains("permission denied: data.write on key/a"),
        "{refused:?}"
    );

    // Deny-all: rbac with no grants. Even the admin's writes are refused now ...
    let deny_all = root.path().join("deny-all.json");
    std::fs::write(&deny_all, br#"{ "grants": [] }"#).expect("write config");
    let rbac = root.path().join("rbac.wasm");
    let exported = cli(
        &address,
        &["plugin", "export", "rbac", rbac.to_str().expect("utf-8")],
    );
    assert!(exported.status.success(), "{exported:?}");
    assert_eq!(
        std::fs::read(&rbac).expect("exported"),
        iroh_raft::bundled::RBAC
    );
    deploy_policy(&address, &rbac, &deny_all);
    let refused = cli(&address, &["kv", "put", "a", "1"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    // ... but the root identity still reads status and deploys a policy again (break glass).
    let status = cli(&address, &["status"]);
    assert!(status.status.success(), "{status:?}");
    let admins = root.path().join("admins.json");
    std::fs::write(
        &admins,
        format!(
            r#"{{ "grants": [ {{ "name": "ops", "peer": "{admin_id}", "role": "admin" }} ] }}"#
        ),
    )
    .expect("write config");
    deploy_policy(&address, &rbac, &admins);
    let put = cli(&address, &["kv", "put", "a", "1"]);
    assert!(put.status.success(), "{put:?}");
    node.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_running_allow_all_warns_at_start() {
    let root = tempfile::tempdir().expect("temp dir");
    let log = root.path().join("node.log");
    let mut node = spawn_logging(
        &root.path().join("n1"),
        free_port(),
        &["--init".to_string(), "--policy".into(), "allow-all".into()],
        std::fs::File::create(&log).expect("log file").into(),
    );
    let address = format_node_address(&node.addr);
    let stranger = root.path().join("stranger.key");
    let put = cli_as(&stranger, &address, &["kv", "put", "open", "1"]);
    assert!(
        put.status.success(),
        "allow-all refused a stranger: {put:?}"
    );
    node.kill();
    let stderr = std::fs::read_to_string(&log).expect("read the log");
    assert!(
        stderr.contains("the access policy is allow-all"),
        "{stderr}"
    );
}
