//! `iroh-raft member ...` and `iroh-raft leader ...`: changing who is in the cluster, in which
//! role, and who leads it.

use clap::Subcommand;
use iroh_raft::parse_node_address;
use iroh_raft::proto::{Member, MemberOperationResponse, MemberRole};

use super::{connect, status::members, with_client};
use crate::args::{Output, Target, print_json};

/// Cluster commands.
#[derive(Subcommand)]
pub(crate) enum ClusterCli {
    /// Print a join ticket through the node asked, for `iroh-raft node --join TICKET`. It holds
    /// the cluster's join secret: it needs `member.add`, and whoever holds it can ask to join.
    Ticket,
}

/// `iroh-raft cluster ...`.
pub(crate) async fn cluster(target: Target, command: ClusterCli) -> anyhow::Result<()> {
    match command {
        ClusterCli::Ticket => {
            let ticket =
                with_client(&target, async |client| Ok(client.get_join_ticket().await?)).await?;
            if target.output == Output::Json {
                return print_json(&serde_json::json!({ "ticket": ticket.to_string() }));
            }
            println!("{ticket}");
            Ok(())
        }
    }
}

/// Membership commands.
#[derive(Subcommand)]
pub(crate) enum MemberCli {
    /// List the members with role, health and replication lag (as the leader sees them).
    List,
    /// Add a node that waits to be added (`iroh-raft node --join TICKET --standby-as ID`).
    ///
    /// A voter is added as a learner and promoted once it has caught up (the command waits for
    /// that); a learner is promoted later on its own; an observer receives the log and never votes.
    Add {
        /// The raft id it gets (the one it was started with).
        node_id: u64,
        /// Its address as `iroh-raft node` printed it: `<endpoint-id>@<ip:port>`, or a ticket.
        address: String,
        /// voter, learner or observer.
        #[arg(long, default_value = "voter")]
        role: MemberRole,
    },
    /// Remove a member. Removing the leader hands leadership to another voter first.
    Remove {
        /// The member.
        node_id: u64,
    },
    /// Promote or demote a member: voter, learner or observer.
    Role {
        /// The member.
        node_id: u64,
        /// Its new role.
        role: MemberRole,
    },
}

/// Leadership commands.
#[derive(Subcommand)]
pub(crate) enum LeaderCli {
    /// Hand leadership to a caught-up voter (`--to ID`), or to the most caught-up one.
    Transfer {
        /// The voter to hand over to.
        #[arg(long)]
        to: Option<u64>,
    },
    /// The leader hands leadership to the most caught-up voter.
    StepDown,
}

fn print_member(output: Output, response: &MemberOperationResponse) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(&serde_json::json!({
            "node_id": response.node_id,
            "role": response.role.map(MemberRole::as_str),
            "log_index": response.log_index,
            "message": response.message,
        }));
    }
    println!("{}", response.message);
    Ok(())
}

/// `iroh-raft member ...`.
pub(crate) async fn member(target: Target, command: MemberCli) -> anyhow::Result<()> {
    let response = match command {
        MemberCli::List => return members(target).await,
        MemberCli::Add {
            node_id,
            address,
            role,
        } => {
            let addr = parse_node_address(&address).map_err(anyhow::Error::msg)?;
            let member = Member::at(&addr);
            with_client(&target, async |c| {
                Ok(c.add_member(node_id, member, role).await?)
            })
            .await?
        }
        MemberCli::Remove { node_id } => {
            with_client(&target, async |c| Ok(c.remove_member(node_id).await?)).await?
        }
        MemberCli::Role { node_id, role } => {
            with_client(&target, async |c| {
                Ok(c.update_member_role(node_id, role).await?)
            })
            .await?
        }
    };
    print_member(target.output, &response)
}

/// `iroh-raft leader ...`.
pub(crate) async fn leader(target: Target, command: LeaderCli) -> anyhow::Result<()> {
    let client = connect(&target).await?;
    let result = match command {
        LeaderCli::Transfer { to } => client.transfer_leadership(to).await,
        LeaderCli::StepDown => client.step_down().await,
    };
    client.close().await;
    let moved = result?;
    if target.output == Output::Json {
        return print_json(&serde_json::json!({
            "previous_leader": moved.previous_leader,
            "new_leader": moved.new_leader,
            "term": moved.term,
            "transfer_duration_ms": moved.transfer_duration.as_secs_f64() * 1e3,
        }));
    }
    println!(
        "leadership moved from node {} to node {} (term {}) in {:.1?}",
        moved.previous_leader, moved.new_leader, moved.term, moved.transfer_duration
    );
    Ok(())
}
