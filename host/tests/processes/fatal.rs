//! A node whose raft core stopped on a storage error used to linger with a dead core, answering
//! nothing useful while a supervisor saw it running. Now it exits non-zero with the reason, and a
//! restart recovers from its data directory.

use std::time::{Duration, Instant};

use iroh_raft::{Client, format_node_address};

use crate::support::{cli, free_port, get, put, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_a_node_with_a_dead_raft_core_lingered_now_it_exits_non_zero_and_recovers() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut node = spawn(&root.path().join("n1"), free_port(), &["--init".into()]);
    let client = Client::connect_with_key(crate::support::admin_key(), node.addr.clone())
        .await
        .expect("connect");
    client
        .write(put("kept", "yes"))
        .await
        .expect("write")
        .1
        .expect("ok");

    tracing::info!("breaking storage: the snapshot directory becomes a file");
    let snapshots = node.dir.join("storage").join("snapshots");
    std::fs::remove_dir_all(&snapshots).expect("remove the snapshot directory");
    std::fs::write(&snapshots, b"not a directory").expect("put a file in its place");
    // Taking a snapshot now fails with a storage error, which stops the raft core.
    let _ = cli(&format_node_address(&node.addr), &["snapshot", "trigger"]);

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = node.child.try_wait().expect("poll the node") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node still runs 60 s after its raft core stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(1), "{status:?}");

    tracing::info!("the disk is mended; a restart recovers from the data directory");
    std::fs::remove_file(&snapshots).expect("remove the file");
    std::fs::create_dir(&snapshots).expect("the snapshot directory again");
    let again = node.restart();
    let client = Client::connect_with_key(crate::support::admin_key(), again.addr.clone())
        .await
        .expect("connect");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .status()
        .await
        .map(|s| s.leader.is_none())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "no leader after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(&client, "kept").await, Some(b"yes".to_vec()));
}
