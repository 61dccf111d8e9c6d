//! The node's iroh endpoint: bound to one configured address, no relays, no port mapping, no
//! address lookup services (peers are dialled at the addresses recorded in the membership).

use std::net::SocketAddr;
use std::path::Path;

use iroh::endpoint::{NetReportConfig, PortmapperConfig, presets};
use iroh::{Endpoint, RelayMode, SecretKey};

use super::NetError;

/// Binds an endpoint with identity `secret_key` on `addr` (port 0 picks a free port), accepting
/// the given ALPNs.
pub async fn bind_endpoint(
    secret_key: SecretKey,
    addr: SocketAddr,
    alpns: Vec<Vec<u8>>,
) -> Result<Endpoint, NetError> {
    let bind_error = |reason: String| NetError::Bind { addr, reason };
    Endpoint::builder(presets::Minimal)
        .secret_key(secret_key)
        .alpns(alpns)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .portmapper_config(PortmapperConfig::Disabled)
        .net_report_config(NetReportConfig::minimal())
        .clear_ip_transports()
        .bind_addr(addr)
        .map_err(|e| bind_error(e.to_string()))?
        .bind()
        .await
        .map_err(|e| bind_error(e.to_string()))
}

/// Reads the node's secret key from `path`, or creates one there (mode 0600) if the file does not
/// exist, so a node keeps its identity across restarts.
pub fn load_or_create_secret_key(path: &Path) -> Result<SecretKey, NetError> {
    let fail = |reason: String| NetError::SecretKey {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| fail(format!("expected 32 bytes, found {}", bytes.len())))?;
            Ok(SecretKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            match write_private(path, &key.to_bytes()) {
                Ok(()) => Ok(key),
                // Another process created it first (two CLI commands started at once): use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_secret_key(path)
                }
                Err(e) => Err(fail(e.to_string())),
            }
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Writes `bytes` to a private temporary file beside `path`, then links it into place: the key
/// appears whole or not at all, and an existing one is never replaced (`AlreadyExists`).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
    let tmp = tempfile::Builder::new()
        .prefix(".key-")
        .tempfile_in(dir.unwrap_or(Path::new(".")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(tmp.path())?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::hard_link(tmp.path(), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = load_or_create_secret_key(&path).unwrap();
        let second = load_or_create_secret_key(&path).unwrap();
        assert_eq!(first.public(), second.public());
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, b"short").unwrap();
        let err = load_or_create_secret_key(&path).unwrap_err();
        assert!(err.to_string().contains("expected 32 bytes"), "{err}");
    }

    #[tokio::test]
    async fn endpoints_talk_over_loopback() {
        let alpn = crate::proto::alpn::RAFT.to_vec();
        let a = bind_endpoint(
            SecretKey::generate(),
            "127.0.0.1:0".parse().unwrap(),
            vec![alpn.clone()],
        )
        .await
        .unwrap();
        let b = bind_endpoint(
            SecretKey::generate(),
            "127.0.0.1:0".parse().unwrap(),
            vec![alpn.clone()],
        )
        .await
        .unwrap();
        let b_addr = iroh::EndpointAddr::new(b.id()).with_ip_addr(b.bound_sockets()[0]);
        let accept = tokio::spawn(async move {
            let incoming = b.accept().await.unwrap();
            let conn = incoming.await.unwrap();
            (conn.remote_id(), b)
        });
        let conn = a.connect(b_addr, &alpn).await.unwrap();
        let (remote, _b) = accept.await.unwrap();
        assert_eq!(remote, a.id());
        conn.close(0u32.into(), b"done");
    }
}
