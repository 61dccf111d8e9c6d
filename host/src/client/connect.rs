//! Connecting a [`Client`]: the client's own endpoint, the connect itself with an optional time
//! limit (the endpoint is closed, not dropped, when it fails), and what a failed connect means.

use std::sync::atomic::AtomicU64;

use iroh::{Endpoint, EndpointAddr, SecretKey};

use super::{Client, ClientError, rand_tag};
use crate::net::bind_endpoint;
use crate::proto::alpn;
use crate::write_session::WriteSession;

/// An endpoint for a client whose identity is `key`: an ephemeral port on every IPv4 address
/// (so it reaches nodes on loopback and on other hosts alike), no protocols served.
pub(crate) async fn client_endpoint(key: SecretKey) -> Result<Endpoint, ClientError> {
    let any_port = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    Ok(bind_endpoint(key, any_port, Vec::new()).await?)
}

/// A failed connect in words: a TLS refusal of the node's certificate means another key answered
/// at the address, which QUIC calls `UnknownIssuer`.
fn connect_failure(node: &EndpointAddr, reason: &str) -> String {
    if reason.contains("UnknownIssuer") || reason.contains("invalid peer certificate") {
        let at: Vec<String> = node.ip_addrs().map(ToString::to_string).collect();
        return format!(
            "the node at {} is not {}: something answers there under another endpoint id (an \
             old address, or a node that was re-created with a new key); check the address",
            at.join(", "),
            node.id
        );
    }
    reason.to_string()
}

impl Client {
    /// Connects to the node at `node` with a fresh, throw-away identity: the access policy sees
    /// a stranger (the bundled `rbac` policy refuses it everything). Use
    /// [`Client::connect_with_key`] with a key the policy knows.
    pub async fn connect(node: EndpointAddr) -> Result<Self, ClientError> {
        Self::connect_with_key(SecretKey::generate(), node).await
    }

    /// Connects to the node at `node` as the identity `key` (its public half is the endpoint id
    /// the access policy judges; `iroh-raft whoami` prints the CLI's, and
    /// [`load_user_key`](crate::load_user_key) loads it).
    pub async fn connect_with_key(key: SecretKey, node: EndpointAddr) -> Result<Self, ClientError> {
        Self::connect_with_key_within(key, node, None).await
    }

    /// Like [`Self::connect_with_key`], giving up after `limit` if given. On failure the client's
    /// endpoint is closed (a dropped endpoint aborts its connections and logs an error).
    pub async fn connect_with_key_within(
        key: SecretKey,
        node: EndpointAddr,
        limit: Option<std::time::Duration>,
    ) -> Result<Self, ClientError> {
        let endpoint = client_endpoint(key).await?;
        let id = node.id;
        let connect = Self::connect_from(endpoint.clone(), node);
        let connected = match limit {
            Some(limit) => tokio::time::timeout(limit, connect)
                .await
                .unwrap_or_else(|_| {
                    Err(ClientError::Connect(format!(
                        "{} did not answer within {limit:?}",
                        id.fmt_short()
                    )))
                }),
            None => connect.await,
        };
        match connected {
            Ok(mut client) => {
                client.owns_endpoint = true;
                Ok(client)
            }
            Err(error) => {
                endpoint.close().await;
                Err(error)
            }
        }
    }

    /// Connects to `node` from an existing endpoint (whose key is the client's identity).
    pub async fn connect_from(endpoint: Endpoint, node: EndpointAddr) -> Result<Self, ClientError> {
        let connection = endpoint
            .connect(node.clone(), alpn::MANAGEMENT)
            .await
            .map_err(|e| ClientError::Connect(connect_failure(&node, &e.to_string())))?;
        Ok(Self {
            endpoint,
            node,
            connection: std::sync::Mutex::new(connection),
            session: WriteSession::new(),
            next_id: AtomicU64::new(1),
            client_tag: rand_tag(),
            owns_endpoint: false,
        })
    }
}
