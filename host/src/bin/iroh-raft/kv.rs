//! `iroh-raft kv ...`: the bundled key-value state machine's commands and queries
//! (`iroh-raft-kv-types`), encoded here and printed as text or JSON.

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use clap::Subcommand;
use iroh_raft::proto::{Consistency, PluginKind};
use iroh_raft::{Client, ClientError};
use iroh_raft_kv_types::{Command as KvCommand, Query as KvQuery, QueryResponse, Response};

use crate::args::{Output, Target, print_json};

#[path = "kv_range.rs"]
mod range;
use range::{Scan, delete_range, print_keys, print_pairs, range_of};

#[derive(Subcommand)]
pub(crate) enum KvCli {
    /// Set a key. The value is the argument, or `--file F`, or (with neither) standard input,
    /// read to its end, byte for byte.
    Put {
        key: String,
        /// The value (omit it to read the value from --file or standard input).
        #[arg(conflicts_with = "file")]
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// Print a key's value (nothing, and exit 0, if it is absent).
    Get {
        key: String,
        /// How current the answer must be: linearizable (through the leader, the default),
        /// lease (the leader's lease, no round trip) or stale (what the node asked has applied).
        #[arg(long, default_value = "linearizable")]
        consistency: Consistency,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// Delete a key, every key with a prefix (`--prefix P`), or a range (`kv delete FROM TO`:
    /// from FROM, inclusive, to TO, exclusive). A prefix or range is deleted in log entries of at
    /// most 1000 keys each (fewer when the values are large), and the number deleted is printed.
    /// Each entry is atomic, the whole delete is not, unlike `etcdctl del --prefix`: a key
    /// written into the range meanwhile may survive.
    Delete {
        /// The key; with TO, the first key of the range.
        #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
        key: Option<String>,
        /// The end of the range (exclusive).
        #[arg(requires = "key")]
        to: Option<String>,
        /// Delete every key starting with this (`--prefix ""`: every key).
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// Set `key` to `new` only if it currently holds `expected` (`--absent`: only if missing).
    Cas {
        key: String,
        /// The value the key must hold now.
        #[arg(long, required_unless_present = "absent")]
        expected: Option<String>,
        /// Require the key to be absent instead.
        #[arg(long, conflicts_with = "expected")]
        absent: bool,
        /// The new value.
        new: String,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// List keys in order: all of them, those with a prefix (`--prefix`), or a range
    /// (`kv scan FROM [TO]`: from FROM, inclusive, to TO, exclusive, or to the last key).
    Scan {
        /// The first key of the range (inclusive).
        #[arg(conflicts_with = "prefix")]
        from: Option<String>,
        /// The end of the range (exclusive); without it the range runs to the last key.
        #[arg(requires = "from")]
        to: Option<String>,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many (0: the maximum, 10000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print the keys only, not their values.
        #[arg(long, conflicts_with = "count")]
        keys_only: bool,
        /// Print only how many keys match: every one, read 10000 at a time, each read as
        /// current as --consistency asks (--limit does not apply).
        #[arg(long)]
        count: bool,
        /// How current the answer must be (as for `kv get`).
        #[arg(long, default_value = "linearizable")]
        consistency: Consistency,
        #[command(flatten)]
        encoding: Encoding,
    },
}

/// How keys and values are written on the command line and printed.
#[derive(clap::Args, Clone, Copy)]
pub(crate) struct Encoding {
    /// Keys and values in hex, both given and printed (binary data, any bytes).
    #[arg(long, conflicts_with = "base64")]
    hex: bool,
    /// Keys and values in base64 (the standard alphabet, padded), both given and printed.
    #[arg(long)]
    base64: bool,
}

impl Encoding {
    /// The bytes a key or value given on the command line stands for.
    pub(crate) fn bytes(self, text: &str) -> anyhow::Result<Vec<u8>> {
        if self.hex {
            return hex::decode(text.trim())
                .map_err(|e| anyhow::anyhow!("`{text}` is not hex ({e}); --hex takes hex digits"));
        }
        if self.base64 {
            return BASE64.decode(text.trim()).map_err(|e| {
                anyhow::anyhow!(
                    "`{text}` is not base64 ({e}); --base64 takes the standard alphabet, padded"
                )
            });
        }
        Ok(text.as_bytes().to_vec())
    }

    /// How bytes are printed: hex with --hex, else as text, any byte that is not UTF-8 escaped
    /// (`\xNN`), so that nothing is refused and nothing is lost.
    pub(crate) fn show(self, bytes: &[u8]) -> String {
        if self.hex {
            return hex::encode(bytes);
        }
        if self.base64 {
            return BASE64.encode(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) => bytes.escape_ascii().to_string(),
        }
    }
}

/// `iroh-raft kv ...`.
pub(crate) async fn run(target: Target, command: KvCli) -> anyhow::Result<()> {
    let client = target.client().await?;
    let mut result = kv_command(&client, target.output == Output::Json, command).await;
    // What the state machine said (or answered) makes no sense as kv: say which one runs. Asked
    // only after a failure: the question needs `status.read`, which a caller granted only data
    // access lacks (and every denial is published).
    if let Err(error) = &result
        && error.downcast_ref::<ClientError>().is_none()
        && let Some(foreign) = foreign_state_machine(&client).await
    {
        result = Err(anyhow::anyhow!("{foreign} (it answered: {error:#})"));
    }
    client.close().await;
    result
}

/// Why the active state machine cannot answer kv commands, if it is not the kv plugin.
async fn foreign_state_machine(client: &Client) -> Option<String> {
    let (registry, bundled) = client.plugins().await.ok()?;
    let active = registry
        .active(PluginKind::StateMachine)
        .cloned()
        .or(bundled)?;
    let speaks_kv = [iroh_raft::bundled::KV, iroh_raft::bundled::KV_V2]
        .iter()
        .any(|wasm| iroh_raft::sha256(wasm) == active.sha256);
    if speaks_kv {
        return None;
    }
    let name = iroh_raft::bundled::ALL
        .iter()
        .find(|(_, _, wasm)| iroh_raft::sha256(wasm) == active.sha256)
        .map_or_else(
            || {
                format!(
                    "a deployed plugin {}",
                    &iroh_raft::sha256_hex(&active.sha256)[..16]
                )
            },
            |(name, _, _)| name.to_string(),
        );
    let version = if active.version.is_empty() {
        "-"
    } else {
        active.version.as_str()
    };
    Some(format!(
        "the active state machine ({name}, version {version}) does not speak the kv protocol; \
         use `iroh-raft read`/`write` with its own encoding"
    ))
}

pub(crate) fn kv_bytes<T: serde::Serialize>(value: &T) -> anyhow::Result<Bytes> {
    Ok(Bytes::from(postcard::to_allocvec(value)?))
}

async fn kv_command(client: &Client, json: bool, command: KvCli) -> anyhow::Result<()> {
    match command {
        KvCli::Get {
            key,
            consistency,
            encoding,
        } => {
            let key = encoding.bytes(&key)?;
            let answer = client
                .read(kv_bytes(&KvQuery::Get { key: &key })?, consistency)
                .await?
                .map_err(|e| anyhow::anyhow!(e))?;
            let QueryResponse::Value(value) = postcard::from_bytes(&answer)? else {
                bail!("the state machine answered a get with something else: is it the kv plugin?");
            };
            match (json, value) {
                (true, value) => print_json(&serde_json::json!({
                    "key": encoding.show(&key),
                    "value": value.as_deref().map(|v| encoding.show(v)),
                }))?,
                (false, Some(value)) => println!("{}", encoding.show(&value)),
                (false, None) => {}
            }
        }
        KvCli::Scan {
            from,
            to,
            prefix,
            limit,
            keys_only,
            count,
            consistency,
            encoding,
        } => {
            let (start, end) = range_of(encoding, from.as_deref(), to.as_deref(), &prefix)?;
            let scan = Scan {
                client,
                end: end.as_deref(),
                consistency,
            };
            if count {
                let count = scan.count(start).await?;
                if json {
                    print_json(&serde_json::json!({ "count": count }))?;
                } else {
                    println!("{count}");
                }
                return Ok(());
            }
            if keys_only {
                let (keys, more) = scan.keys(&start, limit).await?;
                print_keys(json, encoding, &keys, more)?;
            } else {
                let (pairs, more) = scan.page(&start, limit).await?;
                print_pairs(json, encoding, &pairs, more)?;
            }
        }
        KvCli::Put {
            key,
            value,
            file,
            encoding,
        } => {
            let key = encoding.bytes(&key)?;
            let value = match (value, file) {
                (Some(value), _) => encoding.bytes(&value)?,
                (None, Some(path)) => std::fs::read(&path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                (None, None) => {
                    let mut value = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut value)
                        .map_err(|e| anyhow::anyhow!("cannot read standard input: {e}"))?;
                    value
                }
            };
            if key.is_empty() {
                bail!("the key is empty; a key has at least one byte");
            }
            kv_write(
                client,
                json,
                encoding,
                KvCommand::Put {
                    key: &key,
                    value: &value,
                },
            )
            .await?
        }
        KvCli::Delete {
            key,
            to,
            prefix,
            encoding,
        } => {
            if let (Some(key), None) = (&key, &to) {
                let key = encoding.bytes(key)?;
                return kv_write(client, json, encoding, KvCommand::Delete { key: &key }).await;
            }
            let prefix = prefix.unwrap_or_default();
            let (start, end) = range_of(encoding, key.as_deref(), to.as_deref(), &prefix)?;
            delete_range(client, json, &start, end.as_deref()).await?
        }
        KvCli::Cas {
            key,
            expected,
            absent,
            new,
            encoding,
        } => {
            let key = encoding.bytes(&key)?;
            let expected = match expected {
                Some(expected) if !absent => Some(encoding.bytes(&expected)?),
                _ => None,
            };
            let new = encoding.bytes(&new)?;
            let command = KvCommand::Cas {
                key: &key,
                expected: expected.as_deref(),
                new: Some(&new),
            };
            kv_write(client, json, encoding, command).await?
        }
    }
    Ok(())
}

async fn kv_write(
    client: &Client,
    json: bool,
    encoding: Encoding,
    command: KvCommand<'_>,
) -> anyhow::Result<()> {
    let text = |bytes: &[u8]| encoding.show(bytes);
    let (index, outcome) = client.write(kv_bytes(&command)?).await?;
    let response: Response = postcard::from_bytes(&outcome.map_err(|e| anyhow::anyhow!(e))?)?;
    if json {
        // Structured fields, documented in the README; the exit code is the text mode's.
        let value = match &response {
            Response::Written => serde_json::json!({ "index": index, "written": true }),
            Response::Deleted { existed } => {
                serde_json::json!({ "index": index, "deleted": existed })
            }
            Response::DeletedRange { deleted, more } => {
                serde_json::json!({ "index": index, "deleted": deleted, "more": more })
            }
            Response::Cas { swapped, current } => serde_json::json!({
                "index": index,
                "swapped": swapped,
                "current": current.as_deref().map(text),
            }),
        };
        print_json(&value)?;
        if let Response::Cas { swapped: false, .. } = response {
            bail!("not swapped");
        }
        return Ok(());
    }
    match response {
        Response::Written => println!("OK (index {index})"),
        Response::Deleted { existed } => println!(
            "{} (index {index})",
            if existed { "deleted" } else { "absent" }
        ),
        Response::DeletedRange { deleted, .. } => println!("deleted {deleted} (index {index})"),
        Response::Cas { swapped: true, .. } => println!("swapped (index {index})"),
        Response::Cas {
            swapped: false,
            current,
        } => {
            bail!(
                "not swapped: the key holds {}",
                current.as_deref().map_or("nothing".into(), text)
            )
        }
    }
    Ok(())
}
