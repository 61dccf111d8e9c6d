//! The `iroh-raft` command line: parses arguments, sets up logging and hands each command to the
//! file of its family. The commands only parse, call the library's public API and print.

mod args;
mod auth;
mod backup;
mod bench;
mod check;
mod demo;
mod kv;
mod logging;
mod manage;
mod metrics;
mod node;
mod padding;
mod plugin;
mod raw;
mod top;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use args::{Target, WithTarget};
use manage::{config, events, log, members, status};

/// A Raft node whose replicated state machine, access policy and backup handler are WebAssembly
/// components.
#[derive(Parser)]
#[command(name = "iroh-raft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node until Ctrl-C or SIGTERM.
    ///
    /// `--init` creates a one-node cluster and prints a join ticket; `--join TICKET` joins the
    /// cluster it names (added as a learner, promoted to voter once caught up); with neither, the
    /// node comes back as the member its data directory records. Bind a fixed port if the node is
    /// to be restarted: peers reach it at the address in the membership.
    Node(node::NodeArgs),
    /// Show the cluster as its leader sees it: leader, term, members with role, health and lag.
    ///
    /// Exits 1, naming the problem, if a member does not answer the leader, the quorum is lost
    /// or one failure from being lost, no leader is known, or a replica diverged.
    Status(Target),
    /// Show a node's health; exits 1 if it reports problems.
    ///
    /// With `--cluster`, asks every member for its own health as well and exits 1 if any member
    /// is unhealthy or cannot be reached, or if the cluster status shows a problem.
    Health(status::HealthArgs),
    /// Show a node's figures over `iroh-raft-metrics/0`: raft, storage, network, plugin,
    /// management, process (`--prometheus`: the Prometheus text exposition).
    Metrics(metrics::MetricsArgs),
    /// A live view of the cluster: members, leader, lag, ops/s and apply latency, refreshed from
    /// each member's metrics subscription; `q` or Ctrl-C quits.
    Top(top::TopArgs),
    /// List, add, remove members or change their role.
    Member(WithTarget<members::MemberCli>),
    /// Cluster-wide things: `cluster ticket` prints a fresh join ticket.
    Cluster(WithTarget<members::ClusterCli>),
    /// Hand leadership to another voter.
    Leader(WithTarget<members::LeaderCli>),
    /// Read or change the replicated cluster configuration.
    Config(WithTarget<config::ConfigCli>),
    /// Inspect or compact the raft log.
    Log(WithTarget<log::LogCli>),
    /// Take or inspect a snapshot.
    Snapshot(WithTarget<log::SnapshotCli>),
    /// Take, list, inspect, export, delete and restore backups through the backup handler
    /// (deploy one first, e.g. the bundled fs-backup; nodes need --backup-dir).
    Backup(WithTarget<backup::BackupCli>),
    /// Seed a new cluster from a backup image file, offline (like `etcdctl snapshot restore`).
    Restore(backup::RestoreArgs),
    /// Check that the replicas agree (every member's state hash at one applied index).
    Check(WithTarget<check::CheckCli>),
    /// Follow the cluster's events, with their times, until Ctrl-C (JSON lines with -o json).
    ///
    /// If the member stops answering, moves to another and says who leads now and since when
    /// events may be missing; with `--no-follow` it exits 1 with the reason instead.
    Events(events::EventsArgs),
    Watch(watch::WatchArgs),
    /// Propose a raw state-machine command (hex) and print the plugin's response (hex).
    Write(raw::WriteArgs),
    /// Ask the state machine a raw query (hex) and print its answer (hex).
    Read(raw::ReadArgs),
    /// Use the bundled key-value state machine.
    Kv(WithTarget<kv::KvCli>),
    /// Start a three-node cluster on loopback, run a short workload, print what happened, stop.
    Demo(demo::DemoArgs),
    /// Closed-loop load against a running cluster: ops/s and latency percentiles.
    Bench(bench::BenchArgs),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Print the endpoint id you speak as (the identity access policies judge).
    Whoami(auth::WhoamiArgs),
    /// Show the access policy the cluster enforces: which one, its version, the grants of its
    /// configuration (for rbac) and the root identities.
    Auth(Target),
}

fn main() -> ExitCode {
    logging::init();
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|error| anyhow::anyhow!("cannot start the async runtime: {error}"));
    match runtime.and_then(|runtime| runtime.block_on(run(Cli::parse()))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Node(args) => node::run(args).await,
        Command::Status(target) => status::status(target).await,
        Command::Health(args) => status::health(args).await,
        Command::Metrics(args) => metrics::metrics(args).await,
        Command::Top(args) => top::top(args).await,
        Command::Member(args) => members::member(args.target, args.command).await,
        Command::Cluster(args) => members::cluster(args.target, args.command).await,
        Command::Leader(args) => members::leader(args.target, args.command).await,
        Command::Config(args) => config::config(args.target, args.command).await,
        Command::Log(args) => log::log(args.target, args.command).await,
        Command::Snapshot(args) => log::snapshot(args.target, args.command).await,
        Command::Backup(args) => backup::backup(args.target, args.command).await,
        Command::Restore(args) => backup::restore(args).await,
        Command::Check(args) => check::check(args.target, args.command).await,
        Command::Events(args) => events::events(args).await,
        Command::Watch(args) => watch::run(args).await,
        Command::Write(args) => raw::write(args).await,
        Command::Read(args) => raw::read(args).await,
        Command::Kv(args) => kv::run(args.target, args.command).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Plugin(command) => plugin::run(command).await,
        Command::Whoami(args) => auth::whoami(args),
        Command::Auth(target) => auth::auth(target).await,
    }
}
