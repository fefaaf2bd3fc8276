//! The monitoring HTTP server: `/metrics`, `/prometheus`, `/health`, `/topology`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Registry;

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `registry` on `addr` until `stop` is cancelled. Binding errors are returned at once
/// (the agent logs them and runs without monitoring rather than not at all).
pub async fn serve(addr: &str, registry: Registry, stop: CancellationToken) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "Monitoring listening: /metrics (Flume JSON), /prometheus, /health.");
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.cancelled() => return,
            };
            let (stream, _) = match accepted {
                Ok(s) => s,
                Err(error) => {
                    tracing::debug!(%error, "Monitoring accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let registry = registry.clone();
                    async move { Ok::<_, Infallible>(handle(&req, &registry)) }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                if let Err(error) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%error, "Monitoring connection ended with an error.");
                }
            });
        }
    });
    Ok(())
}

fn handle(req: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n", "text/plain");
    }
    match req.uri().path() {
        "/metrics" => {
            let body = registry.flume_json().to_string();
            text(StatusCode::OK, &body, "application/json")
        }
        "/prometheus" => text(
            StatusCode::OK,
            &registry.prometheus(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/topology" => {
            let body = serde_json::to_string(&registry.view().shape).unwrap_or_default();
            text(StatusCode::OK, &body, "application/json")
        }
        "/health" => {
            let bad = registry.unhealthy();
            if bad.is_empty() {
                text(StatusCode::OK, "{\"status\":\"ok\"}", "application/json")
            } else {
                let body = serde_json::json!({ "status": "unhealthy", "not_running": bad });
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &body.to_string(),
                    "application/json",
                )
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /prometheus, /health or /topology\n",
            "text/plain",
        ),
    }
}

fn text(status: StatusCode, body: &str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
