//! Ranges of the bundled key-value state machine: `kv scan` reads one a page at a time (printed as
//! pairs; as keys only or counted, without reading values), `kv delete --prefix`/`FROM TO`
//! deletes one in chunks.

use anyhow::bail;
use iroh_raft::Client;
use iroh_raft::proto::Consistency;
use iroh_raft_kv_types::{
    Command as KvCommand, Key, MAX_SCAN_LIMIT, Pair, Query as KvQuery, QueryResponse, Response,
    prefix_end,
};

use super::{Encoding, kv_bytes};
use crate::args::print_json;

/// A scan over `[start, end)`, read page by page.
pub(crate) struct Scan<'a> {
    pub(crate) client: &'a Client,
    pub(crate) end: Option<&'a [u8]>,
    pub(crate) consistency: Consistency,
}

impl Scan<'_> {
    async fn ask(&self, query: &KvQuery<'_>) -> anyhow::Result<QueryResponse> {
        let answer = self
            .client
            .read(kv_bytes(query)?, self.consistency)
            .await?
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(postcard::from_bytes(&answer)?)
    }

    /// Up to `limit` pairs from `start` on, and whether more follow.
    pub(crate) async fn page(&self, start: &[u8], limit: u32) -> anyhow::Result<(Vec<Pair>, bool)> {
        let end = self.end;
        let QueryResponse::Pairs { pairs, more } =
            self.ask(&KvQuery::Scan { start, end, limit }).await?
        else {
            bail!("the state machine answered a scan with something else: is it the kv plugin?");
        };
        Ok((pairs, more))
    }

    /// Up to `limit` keys from `start` on, without their values, and whether more follow.
    pub(crate) async fn keys(&self, start: &[u8], limit: u32) -> anyhow::Result<(Vec<Key>, bool)> {
        let end = self.end;
        let QueryResponse::Keys { keys, more } =
            self.ask(&KvQuery::Keys { start, end, limit }).await?
        else {
            bail!(
                "the state machine answered a key listing with something else: is it the kv plugin?"
            );
        };
        Ok((keys, more))
    }

    /// How many keys the range holds from `start` on, counted a full page of keys at a time
    /// (values are never read). A page that fails (long keys: more than a frame holds) is asked
    /// for again at half the size, down to one key.
    pub(crate) async fn count(&self, mut start: Vec<u8>) -> anyhow::Result<u64> {
        let mut count = 0u64;
        let mut limit = MAX_SCAN_LIMIT;
        loop {
            let (keys, more) = match self.keys(&start, limit).await {
                Ok(page) => page,
                Err(_) if limit > 1 => {
                    limit /= 2;
                    continue;
                }
                Err(error) => {
                    return Err(error.context(format!("counted {count} keys before this failed")));
                }
            };
            count += keys.len() as u64;
            match keys.last() {
                // The next page starts just after the last key read.
                Some(Key(last)) if more => {
                    start = last.clone();
                    start.push(0);
                }
                _ => return Ok(count),
            }
        }
    }
}

/// Prints a page of a scan, as text or JSON.
pub(crate) fn print_pairs(
    json: bool,
    encoding: Encoding,
    pairs: &[Pair],
    more: bool,
) -> anyhow::Result<()> {
    if json {
        let pairs: Vec<_> = pairs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "key": encoding.show(&p.key),
                    "value": encoding.show(&p.value),
                })
            })
            .collect();
        return print_json(&serde_json::json!({ "pairs": pairs, "more": more }));
    }
    for pair in pairs {
        println!(
            "{}\t{}",
            encoding.show(&pair.key),
            encoding.show(&pair.value)
        );
    }
    print_more(more);
    Ok(())
}

/// Prints a page of a key listing (`kv scan --keys-only`), as text or JSON.
pub(crate) fn print_keys(
    json: bool,
    encoding: Encoding,
    keys: &[Key],
    more: bool,
) -> anyhow::Result<()> {
    if json {
        let keys: Vec<_> = keys.iter().map(|Key(key)| encoding.show(key)).collect();
        return print_json(&serde_json::json!({ "keys": keys, "more": more }));
    }
    for Key(key) in keys {
        println!("{}", encoding.show(key));
    }
    print_more(more);
    Ok(())
}

fn print_more(more: bool) {
    if more {
        eprintln!("(more keys follow: raise --limit, or scan on from after the last key)");
    }
}

/// The range a command names: `FROM [TO]` when FROM is given, else every key starting with
/// `prefix`; refused if it is empty.
pub(crate) fn range_of(
    encoding: Encoding,
    from: Option<&str>,
    to: Option<&str>,
    prefix: &str,
) -> anyhow::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let (start, end) = match from {
        Some(from) => {
            let to = to.map(|to| encoding.bytes(to)).transpose()?;
            (encoding.bytes(from)?, to)
        }
        None => {
            let prefix = encoding.bytes(prefix)?;
            let end = prefix_end(&prefix);
            (prefix, end)
        }
    };
    check_range(&start, end.as_deref(), encoding)?;
    Ok((start, end))
}

/// Refuses a range whose end does not come after its start: it holds nothing, and is surely a
/// mistake.
fn check_range(start: &[u8], end: Option<&[u8]>, encoding: Encoding) -> anyhow::Result<()> {
    if let Some(end) = end
        && end <= start
    {
        bail!(
            "the range is empty: TO ({}) does not come after FROM ({}); keys run from FROM, \
             inclusive, to TO, exclusive",
            encoding.show(end),
            encoding.show(start)
        );
    }
    Ok(())
}

/// The most keys one log entry of a range delete removes.
const DELETE_CHUNK: u32 = 1000;

/// Deletes `[start, end)` in entries of at most [`DELETE_CHUNK`] keys until none remain, and
/// prints how many went. Each entry is atomic; the whole range is not (keys written into it
/// meanwhile may be deleted too, or survive). An entry the state machine fails (its keys are
/// more than the plugin's memory holds, or an older kv plugin read their values too) is proposed
/// again for half as many keys, down to one.
pub(crate) async fn delete_range(
    client: &Client,
    json: bool,
    start: &[u8],
    end: Option<&[u8]>,
) -> anyhow::Result<()> {
    let (mut deleted, mut entries) = (0u64, 0u64);
    let mut limit = DELETE_CHUNK;
    let progress = |deleted: u64, entries: u64| {
        format!("the range delete stopped after deleting {deleted} keys in {entries} log entries")
    };
    let index = loop {
        let command = kv_bytes(&KvCommand::DeleteRange { start, end, limit })?;
        let (index, outcome) = client
            .write(command)
            .await
            .map_err(|e| anyhow::anyhow!(e).context(progress(deleted, entries)))?;
        entries += 1;
        let answer = match outcome {
            Ok(answer) => answer,
            Err(_) if limit > 1 => {
                limit /= 2;
                continue;
            }
            Err(refused) => bail!("{}: {refused}", progress(deleted, entries)),
        };
        let response: Response = postcard::from_bytes(&answer)?;
        let Response::DeletedRange { deleted: now, more } = response else {
            bail!(
                "the state machine answered a range delete with something else: is it the kv plugin?"
            );
        };
        anyhow::ensure!(
            now > 0 || !more,
            "{}: the state machine deleted nothing but says more keys remain",
            progress(deleted, entries)
        );
        deleted += u64::from(now);
        // Keys the entry deleted are gone, so the next one starts from the same key.
        if !more {
            break index;
        }
    };
    if json {
        print_json(&serde_json::json!({ "deleted": deleted, "entries": entries, "index": index }))
    } else {
        let unit = if entries == 1 { "entry" } else { "entries" };
        println!("deleted {deleted} (in {entries} log {unit}, last index {index})");
        Ok(())
    }
}
