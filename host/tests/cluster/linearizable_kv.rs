//! Every history checked (issue 15's first scenario): clients on the followers of a 3-node
//! cluster run the checked workload (`checked_workload.rs`) while the leader is stopped midway
//! and later restarted from its data directory. The history must be linearizable, the writes
//! answered after the stop must be there, and the restarted node must catch up and agree with the
//! others, state hashes included.

use std::time::Duration;

use iroh_raft::proto::Consistency;
use iroh_raft::{Node, Start};

use crate::checked_workload::{Workload, seed};
use crate::support::{TestNode, cluster, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_linearizable_while_the_leader_is_stopped_and_restarted() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let seed = seed();
        let mut nodes = cluster(3).await;
        let leader_id = nodes[0].node.status().leader.expect("a leader");
        let leader = nodes
            .iter()
            .position(|n| n.node.status().node_id == leader_id)
            .expect("the leader is one of the nodes");
        // The clients talk to the followers, which forward writes to whichever node leads.
        let followers: Vec<iroh::EndpointAddr> = (0..nodes.len())
            .filter(|i| *i != leader)
            .map(|i| nodes[i].node.addr())
            .collect();
        let workload = Workload::start(
            &followers,
            4,
            Duration::from_secs(7),
            &[Consistency::Linearizable],
            seed,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stopped_at = workload.now();
        let stopped = nodes.remove(leader);
        // It comes back on its port, as an operator's node with a fixed `--bind` does: the
        // members' records of it stay true.
        let bind = stopped.node.endpoint().bound_sockets()[0];
        stopped.node.shutdown().await.expect("the leader stops");
        // Restarted at once: over a pause, another test's endpoint could take the freed port.
        // Under a full parallel test run the old endpoint once held its port past the node's own
        // 5 s bind retry (AddressInUse); a few more tries ride that out.
        let mut attempts = 0;
        let node = loop {
            let mut restart = config(stopped.dir.path());
            restart.bind = bind;
            match Node::start(restart, Start::Restart).await {
                Ok(node) => break node,
                Err(iroh_raft::NodeError::AddressInUse { .. }) if attempts < 3 => attempts += 1,
                Err(error) => panic!("the old leader restarts: {error}"),
            }
        };
        nodes.push(TestNode {
            node,
            dir: stopped.dir,
        });
        let outcome = workload.finish().await;
        let after_stop = outcome.answered_writes_after(stopped_at);
        println!("{after_stop} writes answered after the leader stopped");
        assert!(
            after_stop > 0,
            "no write succeeded after the leader stopped"
        );
        let all: Vec<iroh::EndpointAddr> = nodes.iter().map(|n| n.node.addr()).collect();
        outcome
            .verify("the leader stopped and restarted", &all)
            .await;
        for node in nodes {
            node.node.shutdown().await.expect("clean shutdown");
        }
    })
    .await
    .expect("the scenario timed out");
}
