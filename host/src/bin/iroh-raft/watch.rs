//! `iroh-raft watch`: prints every change to a prefix, a key or a range, in log order, as the
//! member applies it, until Ctrl-C (or `--count` changes).

use clap::Args;
use futures_util::StreamExt;
use iroh_raft::ClientError;
use iroh_raft::proto::{WatchChange, WatchEnd, WatchRequest};

use crate::args::{Output, Target};
use crate::kv::Encoding;
use crate::manage::connect;

/// Follow every change to keys, with the log index that made it, until Ctrl-C.
///
/// Prints each put (with its new value) and delete of a key starting with PREFIX (`--exact`: of
/// exactly that key; `--to END`: of a key from PREFIX, inclusive, to END, exclusive), in log
/// order, never sampled: `INDEX put KEY VALUE` or `INDEX delete KEY`, tab-separated (JSON lines
/// with -o json). It works for any state machine: the node records what each entry writes.
///
/// `--from INDEX` starts from a past index, as far back as the member keeps changes
/// (`watch_history` in the cluster configuration); older ones are refused with the oldest index
/// still held. If the member stops answering, the watch resumes on another member from where it
/// stopped; if it falls behind (it cannot print as fast as the cluster writes), it resumes from
/// the index it stopped at. Nothing is lost or repeated either way.
#[derive(Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    target: Target,
    /// The prefix watched (empty: every key); with --exact the key, with --to the range's start.
    #[arg(default_value = "")]
    prefix: String,
    /// Watch exactly the key PREFIX.
    #[arg(long, conflicts_with = "to")]
    exact: bool,
    /// Watch the range from PREFIX, inclusive, to this key, exclusive.
    #[arg(long, value_name = "END")]
    to: Option<String>,
    /// The first log index whose changes are printed (default: the next one applied).
    #[arg(long, value_name = "INDEX")]
    from: Option<u64>,
    /// Exit after this many changes.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    #[command(flatten)]
    encoding: Encoding,
}

/// `iroh-raft watch`.
pub(crate) async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let request = request(&args)?;
    let pool = connect(&args.target).await?;
    let result = tokio::select! {
        result = follow(&pool, request, &args) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    pool.close().await;
    result
}

/// The watch the arguments name, checked.
fn request(args: &WatchArgs) -> anyhow::Result<WatchRequest> {
    let start = args.encoding.bytes(&args.prefix)?;
    if args.exact {
        anyhow::ensure!(
            !start.is_empty(),
            "--exact needs a key: keys are never empty"
        );
        return Ok(WatchRequest::key(start, args.from));
    }
    let Some(to) = &args.to else {
        return Ok(WatchRequest::prefix(start, args.from));
    };
    let end = args.encoding.bytes(to)?;
    anyhow::ensure!(
        end > start,
        "the range is empty: --to ({}) does not come after the start ({}); keys run from the \
         start, inclusive, to --to, exclusive",
        args.encoding.show(&end),
        args.encoding.show(&start)
    );
    Ok(WatchRequest {
        start: start.into(),
        end: Some(end.into()),
        from_index: args.from,
    })
}

/// Prints the watch's changes, watching again from where it fell behind, until `--count` changes
/// were printed or an error ends it.
async fn follow(
    pool: &iroh_raft::IrohRaftManagementClient,
    mut request: WatchRequest,
    args: &WatchArgs,
) -> anyhow::Result<()> {
    let mut printed = 0u64;
    if args.count == Some(0) {
        return Ok(());
    }
    loop {
        let mut changes = pool.watch(request.clone()).await?;
        while let Some(change) = changes.next().await {
            match change {
                Ok(change) => {
                    print_change(args.target.output, args.encoding, &change)?;
                    printed += 1;
                    if args.count.is_some_and(|count| printed >= count) {
                        return Ok(());
                    }
                }
                Err(ClientError::WatchEnded(WatchEnd::FellBehind { at })) => {
                    eprintln!("the watch fell behind at index {at}; watching again from {at}");
                    request.from_index = Some(at);
                    break;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

fn print_change(output: Output, encoding: Encoding, change: &WatchChange) -> anyhow::Result<()> {
    let key = encoding.show(&change.key);
    let value = change.value.as_ref().map(|value| encoding.show(value));
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "index": change.index,
                "op": if value.is_some() { "put" } else { "delete" },
                "key": key,
                "value": value,
            }))?
        ),
        Output::Text => match value {
            Some(value) => println!("{}\tput\t{key}\t{value}", change.index),
            None => println!("{}\tdelete\t{key}", change.index),
        },
    }
    Ok(())
}
