//! `iroh-raft top`: a live table of the cluster's members — role, term, applied index, lag,
//! ops/s (from applied-index deltas) and apply latency — fed by one `iroh-raft-metrics/0`
//! subscription per member. The terminal is put in raw mode on the alternate screen (crossterm:
//! the one dependency that reads single keys and restores the terminal portably) and restored
//! however `top` ends; `q`, Esc and Ctrl-C quit with exit status 0.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, queue, terminal};
use iroh_raft::proto::{MetricsCategory, MetricsSnapshot, RaftRole};
use iroh_raft::{Client, MetricsClient};
use tokio::sync::mpsc;

use crate::args::Target;
use crate::metrics::format_us;

#[derive(Args)]
pub(crate) struct TopArgs {
    #[command(flatten)]
    target: Target,
    /// How often each member sends its figures, in milliseconds (at least 100).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
}

/// What one member last reported, and what its rates are computed against.
#[derive(Default)]
struct Row {
    latest: Option<(Instant, MetricsSnapshot)>,
    /// Applied entries per second over the last interval.
    ops: Option<f64>,
    /// Mean apply-call duration over the last interval (µs).
    apply_us: Option<u64>,
    error: Option<String>,
}

impl Row {
    fn update(&mut self, at: Instant, snapshot: MetricsSnapshot) {
        if let Some((then, before)) = &self.latest {
            let (applied_then, applied_now) = (applied(before), applied(&snapshot));
            let elapsed = at.duration_since(*then).as_secs_f64();
            self.ops = ops_per_second(applied_then, applied_now, elapsed);
            self.apply_us = match (&before.plugin, &snapshot.plugin) {
                (Some(then), Some(now)) => interval_mean(
                    (then.apply_latency.count, then.apply_latency.sum_us),
                    (now.apply_latency.count, now.apply_latency.sum_us),
                ),
                _ => None,
            };
        }
        self.latest = Some((at, snapshot));
        self.error = None;
    }
}

fn applied(snapshot: &MetricsSnapshot) -> u64 {
    snapshot.raft.as_ref().and_then(|r| r.applied).unwrap_or(0)
}

/// Entries per second between two applied indexes `elapsed` seconds apart.
fn ops_per_second(then: u64, now: u64, elapsed: f64) -> Option<f64> {
    (elapsed > 0.0).then(|| now.saturating_sub(then) as f64 / elapsed)
}

/// The mean of the observations between two `(count, sum)` readings of a histogram.
fn interval_mean(then: (u64, u64), now: (u64, u64)) -> Option<u64> {
    let count = now.0.checked_sub(then.0).filter(|c| *c > 0)?;
    Some(now.1.saturating_sub(then.1) / count)
}

/// The table, one line per member, as plain text lines.
fn render(rows: &BTreeMap<u64, Row>, interval_ms: u64) -> Vec<String> {
    let leader = rows.values().find_map(|row| {
        let (_, snapshot) = row.latest.as_ref()?;
        let raft = snapshot.raft.as_ref()?;
        (raft.state == RaftRole::Leader).then_some(snapshot)
    });
    let mut lines = vec![
        format!(
            "iroh-raft top: {} members, leader {}, term {}; every {interval_ms} ms; q quits",
            rows.len(),
            leader.map_or("-".into(), |l| l.node_id.to_string()),
            leader
                .and_then(|l| l.raft.as_ref())
                .map_or("-".into(), |r| r.term.to_string()),
        ),
        String::new(),
        format!(
            "{:>6}  {:<10} {:>6} {:>10} {:>8} {:>10} {:>11} {:>11} {:>8}",
            "NODE", "STATE", "TERM", "APPLIED", "LAG", "OPS/S", "APPLY MEAN", "APPLY P99", "TRAPS"
        ),
    ];
    for (id, row) in rows {
        let Some((_, snapshot)) = &row.latest else {
            let why = row.error.as_deref().unwrap_or("waiting for figures");
            lines.push(format!("{id:>6}  {why}"));
            continue;
        };
        let Some(raft) = &snapshot.raft else { continue };
        let lag = leader
            .and_then(|l| l.raft.as_ref())
            .and_then(|l| {
                if l.leader == Some(*id) {
                    return Some(0);
                }
                l.followers.iter().find(|f| f.node_id == *id)?.lag
            })
            .map_or("-".into(), |lag| lag.to_string());
        let plugin = snapshot.plugin.as_ref();
        let p99 = plugin
            .and_then(|p| p.apply_latency.quantile_us(0.99))
            .map_or("-".into(), |us| format!("≤{}", format_us(us)));
        let traps: u64 = plugin.map_or(0, |p| p.traps.iter().map(|(_, n)| n).sum());
        let mut line = format!(
            "{id:>6}  {:<10} {:>6} {:>10} {:>8} {:>10} {:>11} {:>11} {:>8}",
            raft.state.as_str(),
            raft.term,
            raft.applied.map_or("-".into(), |a| a.to_string()),
            lag,
            row.ops.map_or("-".into(), |ops| format!("{ops:.1}")),
            row.apply_us.map_or("-".into(), format_us),
            p99,
            traps
        );
        if let Some(error) = &row.error {
            line.push_str(&format!("  ({error})"));
        }
        lines.push(line);
    }
    lines
}

/// Puts the terminal back however `top` ends.
struct Screen;

impl Screen {
    fn enter() -> anyhow::Result<Self> {
        terminal::enable_raw_mode()?;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(Self)
    }

    fn draw(&self, lines: &[String]) -> anyhow::Result<()> {
        let mut out = std::io::stdout();
        queue!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )?;
        // Raw mode: a line feed does not return the carriage.
        write!(out, "{}\r\n", lines.join("\r\n"))?;
        out.flush()?;
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

enum Update {
    Snapshot(u64, Instant, Box<MetricsSnapshot>),
    Failed(u64, String),
}

/// `iroh-raft top`.
pub(crate) async fn top(args: TopArgs) -> anyhow::Result<()> {
    let TopArgs {
        target,
        interval_ms,
    } = args;
    let key = target.secret_key()?;
    let client = Client::connect_with_key(key.clone(), target.node()?).await?;
    let status = client.status().await;
    client.close().await;
    let status = status?;
    let (updates, mut received) = mpsc::channel(64);
    let mut rows = BTreeMap::new();
    let mut watchers = Vec::new();
    for (id, member) in status.voters.iter().chain(&status.learners) {
        rows.insert(*id, Row::default());
        let (id, key, updates) = (*id, key.clone(), updates.clone());
        let addr = member.endpoint_addr()?;
        watchers.push(tokio::spawn(async move {
            let failed = |e: iroh_raft::ClientError| Update::Failed(id, e.to_string());
            let watched = async {
                let metrics = MetricsClient::connect_with_key(key, addr).await?;
                let categories = vec![MetricsCategory::Raft, MetricsCategory::Plugin];
                let interval = Duration::from_millis(interval_ms);
                let mut subscription = metrics.subscribe(categories, interval).await?;
                while let Some(snapshot) = subscription.next().await? {
                    let update = Update::Snapshot(id, Instant::now(), Box::new(snapshot));
                    if updates.send(update).await.is_err() {
                        break;
                    }
                }
                Ok(())
            };
            if let Err(error) = watched.await {
                let _ = updates.send(failed(error)).await;
            }
        }));
    }
    drop(updates);
    let (quit, mut quitting) = mpsc::channel(1);
    let keys = std::thread::spawn(move || read_keys(&quit));
    let screen = Screen::enter()?;
    screen.draw(&render(&rows, interval_ms))?;
    // Once every watcher has ended, nothing more arrives: wait for the user only.
    let mut watching = true;
    loop {
        tokio::select! {
            update = received.recv(), if watching => {
                match update {
                    Some(Update::Snapshot(id, at, snapshot)) => {
                        rows.entry(id).or_default().update(at, *snapshot);
                    }
                    Some(Update::Failed(id, error)) => rows.entry(id).or_default().error = Some(error),
                    None => watching = false,
                }
                screen.draw(&render(&rows, interval_ms))?;
            }
            _ = quitting.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    drop(screen);
    drop(quitting);
    for watcher in watchers {
        watcher.abort();
    }
    let _ = keys.join();
    Ok(())
}

/// Reads keys until `q`, Esc or Ctrl-C (a key in raw mode), or until `quit`'s receiver is gone.
fn read_keys(quit: &mpsc::Sender<()>) {
    while !quit.is_closed() {
        match event::poll(Duration::from_millis(100)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(_) => break,
        }
        let Ok(Event::Key(key)) = event::read() else {
            continue;
        };
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if key.kind == KeyEventKind::Press
            && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c)
        {
            let _ = quit.try_send(());
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_deltas() {
        assert_eq!(ops_per_second(100, 300, 2.0), Some(100.0));
        assert_eq!(
            ops_per_second(300, 100, 2.0),
            Some(0.0),
            "a restored node goes back"
        );
        assert_eq!(ops_per_second(1, 2, 0.0), None);
        assert_eq!(interval_mean((10, 1_000), (14, 1_800)), Some(200));
        assert_eq!(
            interval_mean((10, 1_000), (10, 1_000)),
            None,
            "no apply call"
        );
    }

    #[test]
    fn a_member_without_figures_says_why() {
        let mut rows = BTreeMap::new();
        rows.insert(
            3,
            Row {
                error: Some("cannot reach the node".into()),
                ..Row::default()
            },
        );
        let lines = render(&rows, 500);
        assert!(lines[0].contains("1 members, leader -"), "{lines:?}");
        assert!(lines[3].contains("cannot reach the node"), "{lines:?}");
    }
}
