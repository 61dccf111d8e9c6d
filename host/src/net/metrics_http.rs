//! `--metrics-http ADDR`: a plain HTTP/1.1 listener (hyper) that answers `GET /metrics` with the
//! node's Prometheus exposition and 404 for every other path. It is for a scraper the operator
//! runs next to the node: it is **not** access-controlled (like etcd's `--listen-metrics-urls`),
//! so bind it to an address only trusted scrapers reach.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

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

/// Binds `addr` and serves scrapes until the returned task is aborted. Returns the bound address
/// (port 0 picks a free one).
pub async fn serve_metrics_http(
    addr: SocketAddr,
    exposition: Exposition,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NetError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| NetError::MetricsHttp { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| NetError::MetricsHttp { addr, source })?;
    let task = tokio::spawn(async move {
        loop {
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
                if let Err(error) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("metrics http connection: {error}");
                }
            });
        }
    });
    Ok((bound, task))
}
