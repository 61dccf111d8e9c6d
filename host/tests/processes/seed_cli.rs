//! One seed is enough (issue 12): a client given one member's address learns every member and
//! the leader on `iroh-raft-discovery/0` and keeps working through the others when that member is
//! SIGKILLed; the CLI takes several `--node`s; a cluster id that does not exist, and a caller the
//! policy does not let read status, get clear errors.

use std::time::Duration;

use iroh_raft::proto::{JoinTicket, RequestError};
use iroh_raft::{ClientError, IrohRaftManagementClient, format_node_address};

use crate::support::{admin_key, cli, cluster, eventually, put};

const LIMIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_from_one_seed_finds_every_member_and_outlives_the_seed() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        let seed = format_node_address(&nodes[0].addr);
        let client = IrohRaftManagementClient::connect_to_cluster(admin_key(), &seed)
            .await
            .expect("connect from one seed");
        let known = client.members().await;
        assert_eq!(known.len(), 3, "{known:?}");
        for node in &nodes {
            assert!(known.iter().any(|a| a.id == node.addr.id));
        }
        client
            .write(put("before", "kill"))
            .await
            .expect("write")
            .1
            .expect("ok");

        tracing::info!("SIGKILL the seed; the client goes on through the others");
        nodes[0].kill();
        let (_, outcome) = client
            .write(put("after", "kill"))
            .await
            .expect("a write after the seed died");
        outcome.expect("ok");
        eventually(
            Duration::from_secs(30),
            "a status without the seed",
            || async {
                client
                    .get_cluster_status()
                    .await
                    .is_ok_and(|s| s.leader.is_some())
            },
        )
        .await;

        // The CLI with the dead seed first and a live member second.
        let dead_then_live = format!(
            "{} {}",
            format_node_address(&nodes[0].addr),
            format_node_address(&nodes[1].addr)
        );
        let output = cli(&dead_then_live, &["kv", "get", "after"]);
        assert!(output.status.success(), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("kill"),
            "{output:?}"
        );

        // A cluster id that does not exist.
        let ticket = JoinTicket {
            cluster_id: [0x5a; 16],
            endpoint_key: *nodes[1].addr.id.as_bytes(),
            addrs: nodes[1].addr.ip_addrs().copied().collect(),
            secret: [0; 32],
        };
        match IrohRaftManagementClient::connect_to_cluster(admin_key(), &ticket.to_string()).await {
            Err(ClientError::Request(RequestError::Refused(reason))) => {
                assert!(reason.contains("no cluster 5a5a"), "{reason}")
            }
            Err(other) => panic!("expected a refusal naming the cluster, got {other}"),
            Ok(_) => panic!("a cluster that does not exist was found"),
        }
        // A caller the bundled rbac policy grants nothing.
        match IrohRaftManagementClient::connect_to_cluster(
            iroh::SecretKey::generate(),
            &format_node_address(&nodes[1].addr),
        )
        .await
        {
            Err(ClientError::Request(RequestError::Denied { operation, .. })) => {
                assert_eq!(operation, "status.read")
            }
            Err(other) => panic!("expected a denial, got {other}"),
            Ok(_) => panic!("a stranger learned the membership"),
        }
        client.close().await;
    })
    .await
    .expect("the test finished in time");
}
