//! `--metrics-http ADDR`: a plain HTTP/1.1 listener (hyper) that answers `GET /metrics` with the
//! node's Prometheus exposition and 404 for every other path. It is for a scraper the operator
//! runs next to the node: it is **not** access-controlled (like etcd's `--listen-metrics-urls`),
//! so bind it to an address only trusted scrapers reach. Because anyone who reaches the port may
//! connect, connections are bounded ([`HttpLimits`]): a client that holds one open without sending
//! a request is cut off, and a flood of them waits in the listen backlog instead of taking memory.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::NetError;

/// Makes the exposition text on each scrape.
pub type Exposition = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// The answer to one HTTP request for `path` with `method` (built on a blocking thread: the
/// exposition reads the file system).
fn answer(method: &Method, path: &str, exposition: &Exposition) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    match (method, path) {
        (&Method::GET, "/metrics") => match exposition() {
            Ok(text) => respond(
                StatusCode::OK,
                crate::metrics::prometheus::CONTENT_TYPE,
                text,
            ),
            Err(reason) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("the node cannot report its metrics: {reason}\n"),
            ),
        },
        (_, "/metrics") => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET /metrics is served\n".into(),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the metrics are at /metrics\n".into(),
        ),
    }
}

/// Bounds on what scrapers may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    /// Connections served at once; the next one is accepted when one of them ends.
    pub(crate) connections: usize,
    /// A connection that has not sent a whole request head within this is closed.
    pub(crate) header_timeout: Duration,
    /// Every connection is closed after this, however busy (a scraper simply reconnects).
    pub(crate) lifetime: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            connections: 32,
            header_timeout: Duration::from_secs(10),
            lifetime: Duration::from_secs(120),
        }
    }
}

/// Binds `addr` and serves scrapes until the returned task is aborted. Returns the bound address
/// (port 0 picks a free one).
pub async fn serve_metrics_http(
    addr: SocketAddr,
    exposition: Exposition,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NetError> {
    serve_with(addr, exposition, HttpLimits::default()).await
}

/// [`serve_metrics_http`] with the given limits.
pub(crate) async fn serve_with(
    addr: SocketAddr,
    exposition: Exposition,
    limits: HttpLimits,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NetError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| NetError::MetricsHttp { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| NetError::MetricsHttp { addr, source })?;
    let slots = Arc::new(Semaphore::new(limits.connections));
    let task = tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("metrics http: accept failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let exposition = exposition.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (method, path) =
                        (request.method().clone(), request.uri().path().to_string());
                    let exposition = exposition.clone();
                    async move {
                        let response = tokio::task::spawn_blocking(move || {
                            answer(&method, &path, &exposition)
                        })
                        .await
                        .unwrap_or_else(|error| {
                            let mut failed = Response::new(Full::new(Bytes::from(format!(
                                "the metrics task failed: {error}\n"
                            ))));
                            *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                            failed
                        });
                        Ok::<_, Infallible>(response)
                    }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(limits.lifetime, connection).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::debug!("metrics http connection: {error}"),
                    Err(_) => tracing::debug!("metrics http connection: lifetime over, closed"),
                }
                drop(slot);
            });
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
#[path = "metrics_http_tests.rs"]
mod tests;
