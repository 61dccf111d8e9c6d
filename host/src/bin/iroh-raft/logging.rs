//! The log: to stderr, filtered by `RUST_LOG` (warnings by default), with warnings that raft
//! repeats per peer while a member is down summed up once per interval
//! ([`iroh_raft::log_limit::RepeatLimit`]).

use std::io::IsTerminal as _;

use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the process's log.
pub(crate) fn init() {
    let levels = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let repeats = iroh_raft::log_limit::RepeatLimit::new(
        iroh_raft::log_limit::REPEAT_INTERVAL,
        std::io::stderr,
    );
    // One combined filter: its level hint is `levels`' own, so disabled call sites stay free.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour only for a person at a terminal: a file or a pipe gets plain text.
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(levels.and(repeats)),
        )
        .init();
}
