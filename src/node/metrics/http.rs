//! The metrics port: HTTPS with mutual TLS (like every port of a member), serving
//! `/metrics` in Prometheus' text format and `/health` as etcd does.
//!
//! `/health` answers `{"health":"true"}` (200) when the member knows a leader and a
//! linearizable read through it succeeds within a second (etcd 3.4 does a quorum read too);
//! otherwise 503 with `{"health":"false","reason":"..."}`, using etcd 3.5's reasons
//! (`RAFT NO LEADER`, `RANGE ERROR:...`). A 3.4 client reads only `health`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Method;
use hyper::Request;
use hyper::Response;
use hyper::StatusCode;
use hyper::header;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::rt::TokioTimer;
use openraft::async_runtime::WatchReceiver;
use serde::Serialize;
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::errors::EtcdError;
use crate::node::member::Member;
use crate::node::metrics::MemberMetrics;
use crate::node::metrics::TEXT_CONTENT_TYPE;
use crate::pki::CertFiles;

pub const METRICS_PATH: &str = "/metrics";
pub const HEALTH_PATH: &str = "/health";

/// How long `/health` waits for its linearizable read (etcd 3.4's quorum read: 1 s).
const HEALTH_READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Likewise for a client that opens a request and never finishes its headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What `/health` asks: is this member able to serve a linearizable request right now?
pub trait HealthProbe: Send + Sync + 'static {
    /// `Err` carries etcd's reason.
    fn check(&self) -> impl Future<Output = Result<(), String>> + Send;
}

impl HealthProbe for Member {
    async fn check(&self) -> Result<(), String> {
        if self.raft.metrics().borrow_watched().current_leader.is_none() {
            return Err("RAFT NO LEADER".into());
        }
        match tokio::time::timeout(HEALTH_READ_TIMEOUT, self.linearizable_barrier()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("RANGE ERROR:{e}")),
            Err(_) => Err(format!("RANGE ERROR:{}", EtcdError::Timeout)),
        }
    }
}

/// What the metrics port serves.
pub struct Endpoint<P> {
    pub metrics: Arc<MemberMetrics>,
    pub health: Arc<P>,
}

/// Serves HTTPS on `listener` until `shutdown` completes. Clients must present a
/// certificate from the CA of `cert`; others fail the handshake and get no HTTP at all.
pub fn start<P: HealthProbe>(
    listener: TcpListener,
    cert: &CertFiles,
    endpoint: Endpoint<P>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let acceptor = TlsAcceptor::from(crate::node::tls::server_config(cert, &[crate::node::tls::ALPN_HTTP1])?);
    Ok(tokio::spawn(serve(listener, acceptor, Arc::new(endpoint), shutdown)))
}

async fn serve<P: HealthProbe>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    endpoint: Arc<Endpoint<P>>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::warn!("metrics port: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            if let Some(tls) = crate::node::tls::handshake(&acceptor, tcp, addr, "metrics").await {
                serve_connection(tls, endpoint).await;
            }
        });
    }
}

/// HTTP/1.1 on an established (already authenticated) connection. Requests hyper cannot
/// parse get its 400 answer.
async fn serve_connection<IO, P>(io: IO, endpoint: Arc<Endpoint<P>>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    P: HealthProbe,
{
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let endpoint = endpoint.clone();
        async move { Ok::<_, Infallible>(respond(&endpoint, req.method(), req.uri().path()).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        tracing::debug!("metrics port: connection ended: {e}");
    }
}

async fn respond<P: HealthProbe>(endpoint: &Endpoint<P>, method: &Method, path: &str) -> Response<Full<Bytes>> {
    match path {
        METRICS_PATH if method == Method::GET || method == Method::HEAD => match endpoint.metrics.render() {
            Ok(text) => reply(StatusCode::OK, TEXT_CONTENT_TYPE, text),
            Err(e) => {
                tracing::warn!("metrics port: {e:#}");
                reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", format!("{e:#}\n"))
            }
        },
        METRICS_PATH => method_not_allowed("GET, HEAD"),
        HEALTH_PATH if method == Method::GET => {
            let outcome = endpoint.health.check().await;
            endpoint.metrics.record_health(outcome.is_ok());
            let (status, body) = health_reply(outcome);
            reply(status, "application/json", body)
        }
        HEALTH_PATH => method_not_allowed("GET"),
        _ => reply(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "404 page not found\n".to_string()),
    }
}

#[derive(Serialize)]
struct Health {
    health: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// etcd's `/health` status code and JSON body for the outcome of a health check.
fn health_reply(outcome: Result<(), String>) -> (StatusCode, String) {
    let (status, health) = match outcome {
        Ok(()) => (StatusCode::OK, Health { health: "true", reason: None }),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, Health { health: "false", reason: Some(reason) }),
    };
    // Serializing a struct of strings cannot fail; the fallback keeps that a non-panic.
    let body = serde_json::to_string(&health).unwrap_or_else(|_| r#"{"health":"false"}"#.into());
    (status, body)
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response =
        reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "Method Not Allowed\n".to_string());
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::node::metrics::tests::member_metrics;
    use crate::node::metrics::tests::sample;

    struct FixedHealth(Result<(), String>);

    impl HealthProbe for FixedHealth {
        async fn check(&self) -> Result<(), String> {
            self.0.clone()
        }
    }

    /// Sends `request` (raw bytes) over an in-memory connection and returns the raw answer.
    async fn exchange(endpoint: Arc<Endpoint<FixedHealth>>, request: &[u8]) -> String {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let served = tokio::spawn(serve_connection(server, endpoint));
        client.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        served.await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }

    fn endpoint(health: Result<(), String>) -> (tempfile::TempDir, Arc<Endpoint<FixedHealth>>) {
        let (dir, metrics) = member_metrics();
        let endpoint = Endpoint { metrics, health: Arc::new(FixedHealth(health)) };
        (dir, Arc::new(endpoint))
    }

    fn get(path: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").into_bytes()
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text() {
        let (_dir, endpoint) = endpoint(Ok(()));
        let answer = exchange(endpoint, &get("/metrics?x=1")).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{answer}");
        assert!(answer.contains("\n# TYPE etcd_server_has_leader gauge\n"), "{answer}");
    }

    #[tokio::test]
    async fn health_answers_like_etcd_and_is_counted() {
        let (_dir, healthy) = endpoint(Ok(()));
        let answer = exchange(healthy.clone(), &get("/health")).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n{\"health\":\"true\"}"), "{answer}");
        let text = healthy.metrics.render().unwrap();
        assert_eq!(sample(&text, "etcd_server_health_success"), Some(1.0));

        let (_dir2, sick) = endpoint(Err("RAFT NO LEADER".into()));
        let answer = exchange(sick.clone(), &get("/health")).await;
        assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{answer}");
        assert!(answer.ends_with("{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}"), "{answer}");
        let text = sick.metrics.render().unwrap();
        assert_eq!(sample(&text, "etcd_server_health_failures"), Some(1.0));
    }

    #[tokio::test]
    async fn unknown_paths_wrong_methods_and_garbage_get_http_errors() {
        let (_dir, endpoint) = endpoint(Ok(()));
        let answer = exchange(endpoint.clone(), &get("/metricsx")).await;
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");

        let post = b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let answer = exchange(endpoint.clone(), post).await;
        assert!(answer.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{answer}");
        assert!(answer.contains("allow: GET\r\n"), "{answer}");

        let answer = exchange(endpoint, b"\x16\x03\x01 not http at all\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    }
}
