//! [`RepeatLimit`]: a log filter that keeps a warning repeated many times a second from flooding
//! the log. openraft warns on every heartbeat it cannot deliver, 10–20 times a second per
//! unreachable member; with this filter the log shows the first, then one line per message per
//! interval saying how often it came. The summary is written straight to the log's writer (a
//! filter cannot log through the subscriber it filters).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, Filter};

/// The targets whose warnings repeat per peer while a member is down: at the heartbeat rate, and
/// at every replication retry.
const LIMITED_TARGETS: &[&str] = &[
    "openraft::core::heartbeat",
    "openraft::replication",
    "openraft::engine::handler::replication_handler",
];

/// At most this many distinct messages are tracked at once.
const MAX_TRACKED: usize = 256;

/// How often a repeated warning is summed up.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Seen {
    since: Instant,
    repeats: u64,
}

/// Passes every event, except that a warning of a limited target whose text (which names the
/// peer) was already logged in the last interval is counted instead; the first one after the
/// interval is replaced by a summary with the count, written to `W`.
#[derive(Debug)]
pub struct RepeatLimit<W> {
    every: Duration,
    seen: Mutex<HashMap<String, Seen>>,
    writer: W,
}

impl<W: for<'a> MakeWriter<'a>> RepeatLimit<W> {
    /// Sums up repeats once per `every`, on `writer` (the log layer's own).
    pub fn new(every: Duration, writer: W) -> Self {
        Self {
            every,
            seen: Mutex::new(HashMap::new()),
            writer,
        }
    }

    /// Whether to log a limited warning whose text is `message`; may log the summary instead.
    fn admit(&self, metadata: &Metadata<'_>, message: &str) -> bool {
        let key = format!("{}\0{message}", metadata.target());
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_TRACKED {
            // Messages that vary (an error with a changing detail) are not kept forever.
            let every = self.every;
            seen.retain(|_, entry| now.duration_since(entry.since) < every * 2);
            if seen.len() >= MAX_TRACKED {
                seen.clear();
            }
        }
        let Some(entry) = seen.get_mut(&key) else {
            seen.insert(
                key,
                Seen {
                    since: now,
                    repeats: 0,
                },
            );
            return true;
        };
        if now.duration_since(entry.since) < self.every {
            entry.repeats += 1;
            return false;
        }
        let repeats = std::mem::take(&mut entry.repeats) + 1;
        let over = now.duration_since(entry.since);
        entry.since = now;
        if repeats == 1 {
            return true;
        }
        drop(seen);
        let mut line = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut line));
        let _ = writeln!(
            line,
            "  WARN {}: {message} (logged {repeats} times in the last {over:.0?})",
            metadata.target()
        );
        let _ = std::io::Write::write_all(&mut self.writer.make_writer(), line.as_bytes());
        false
    }
}

/// Collects an event's message.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

impl<S, W: for<'a> MakeWriter<'a> + 'static> Filter<S> for RepeatLimit<W> {
    fn enabled(&self, _metadata: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    /// No level of its own: combined with a level filter (`and`), that filter's hint stands, so
    /// disabled `debug!`/`trace!` call sites stay free. (`None` here would make every call site
    /// look possibly enabled, and raft's hot paths pay for it.)
    fn max_level_hint(&self) -> Option<tracing_subscriber::filter::LevelFilter> {
        Some(tracing_subscriber::filter::LevelFilter::TRACE)
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() > Level::WARN
            || !LIMITED_TARGETS
                .iter()
                .any(|target| metadata.target().starts_with(target))
        {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        self.admit(metadata, &message.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, Registry};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bug_twenty_heartbeat_warnings_a_second_now_one_line_per_peer_and_interval() {
        let captured = Captured::default();
        let (writer, summaries) = (captured.clone(), captured.clone());
        let subscriber = Registry::default().with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_filter(RepeatLimit::new(Duration::from_millis(300), move || {
                    summaries.clone()
                })),
        );
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..40 {
                for peer in [2, 3] {
                    tracing::warn!(
                        target: "openraft::core::heartbeat::worker",
                        "HeartbeatWorker(id=1, target={peer}) failed to send a heartbeat: Err(Elapsed(()))"
                    );
                }
                tracing::warn!(target: "iroh_raft::other", "not limited");
            }
            std::thread::sleep(Duration::from_millis(350));
            tracing::warn!(
                target: "openraft::core::heartbeat::worker",
                "HeartbeatWorker(id=1, target=2) failed to send a heartbeat: Err(Elapsed(()))"
            );
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let of = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
        assert_eq!(of("not limited"), 40, "{text}");
        assert_eq!(of("target=3) failed"), 1, "{text}");
        assert_eq!(of("target=2) failed"), 2, "{text}");
        assert_eq!(of("logged 40 times"), 1, "{text}");
    }
}
