//! `raftty metrics NAME`: scrapes a member's metrics port over mutual TLS with the lab's
//! `root` certificate, so people and tests need no curl and no certificate flags. Also the
//! HTTPS POST that talks to etcd's JSON gateway on a client port.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::Empty;
use hyper::Request;
use hyper::Uri;
use hyper::header;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::lab::Lab;
use crate::pki::CertFiles;

const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP answer: its status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// GETs `url` (`https://host:port/path`) presenting `cert`, trusting only its CA.
pub async fn get(url: &str, cert: &CertFiles, timeout: Duration) -> Result<Answer> {
    tokio::time::timeout(timeout, get_now(url, cert))
        .await
        .with_context(|| format!("no answer from {url} within {timeout:?}"))?
        .with_context(|| format!("scraping {url}"))
}

async fn get_now(url: &str, cert: &CertFiles) -> Result<Answer> {
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    anyhow::ensure!(uri.scheme_str() == Some("https"), "{url}: metrics ports speak only HTTPS");
    get_uri(&uri, Some(cert)).await
}

/// GETs a plain `http://` URL: only for clusters the app attaches to that run without TLS
/// (a lab's ports are all mTLS).
pub async fn get_plain(url: &str, timeout: Duration) -> Result<Answer> {
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    anyhow::ensure!(uri.scheme_str() == Some("http"), "{url} is not a plain http URL");
    tokio::time::timeout(timeout, get_uri(&uri, None))
        .await
        .with_context(|| format!("no answer from {url} within {timeout:?}"))?
        .with_context(|| format!("scraping {url}"))
}

async fn get_uri(uri: &Uri, cert: Option<&CertFiles>) -> Result<Answer> {
    let host = uri.host().context("the URL names no host")?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let server_name = ServerName::try_from(host.clone()).with_context(|| format!("bad host name {host}"))?;

    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    let _ = tcp.set_nodelay(true);
    let Some(cert) = cert else {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("metrics scrape connection: {e}");
            }
        });
        return send(sender, &host, port, path).await;
    };
    let tls = TlsConnector::from(cert.rustls_client(crate::node::tls::ALPN_HTTP1)?)
        .connect(server_name, tcp)
        .await
        .context("TLS handshake")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("metrics scrape connection: {e}");
        }
    });
    send(sender, &host, port, path).await
}

async fn send(
    mut sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: &str,
    port: u16,
    path: String,
) -> Result<Answer> {
    let request = Request::get(path).header(header::HOST, format!("{host}:{port}")).body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer { status, body: String::from_utf8_lossy(&body).into_owned() })
}

/// POSTs `json` to `url` (a member's client port, the JSON gateway) over mTLS with `cert`,
/// HTTP/1.1 as curl would, with `token` in the Authorization header when given.
pub async fn post_json(
    url: &str,
    cert: &CertFiles,
    json: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Answer> {
    let post = async {
        let response = post(url, cert, json, token).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(Answer { status, body: String::from_utf8_lossy(&body).into_owned() })
    };
    tokio::time::timeout(timeout, post).await.with_context(|| format!("no answer from {url} within {timeout:?}"))?
}

/// Like [`post_json`] for an answer that streams (a gateway watch): its first `lines` lines.
pub async fn post_json_lines(
    url: &str,
    cert: &CertFiles,
    json: &str,
    lines: usize,
    timeout: Duration,
) -> Result<Vec<String>> {
    let read = async {
        let mut body = post(url, cert, json, None).await?.into_body();
        let mut text = String::new();
        while text.matches('\n').count() < lines {
            let Some(frame) = body.frame().await else { break };
            if let Ok(data) = frame?.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
        anyhow::Ok(text.lines().take(lines).map(str::to_string).collect())
    };
    tokio::time::timeout(timeout, read)
        .await
        .with_context(|| format!("{url} did not send {lines} lines within {timeout:?}"))?
}

async fn post(
    url: &str,
    cert: &CertFiles,
    json: &str,
    token: Option<&str>,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    let host = uri.host().context("the URL names no host")?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let server_name = ServerName::try_from(host.clone()).with_context(|| format!("bad host name {host}"))?;
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    // HTTP/1.1, as `curl --http1.1` speaks it (the client port offers h2 and HTTP/1.1).
    let tls = TlsConnector::from(cert.rustls_client(crate::node::tls::ALPN_HTTP1)?)
        .connect(server_name, tcp)
        .await
        .context("TLS handshake")?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut request = Request::post(path)
        .header(header::HOST, format!("{host}:{port}"))
        .header(header::CONTENT_TYPE, "application/json")
        // As curl and browsers send it. etcd's gateway treats a request without one
        // differently: it then acts as the member's own certificate.
        .header(header::ACCEPT, "*/*");
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, t);
    }
    Ok(sender.send_request(request.body(http_body_util::Full::new(Bytes::from(json.to_string())))?).await?)
}

/// The lines of `text` that contain `pattern` (a plain substring, like `grep -F`).
pub fn grep(text: &str, pattern: &str) -> String {
    text.lines().filter(|line| line.contains(pattern)).flat_map(|line| [line, "\n"]).collect()
}

/// `raftty metrics NAME [--grep PATTERN]`: prints the member's metrics (or the matching
/// lines); like grep, exits 1 when a pattern matches nothing.
pub async fn print_member(lab: &Lab, name: &str, pattern: Option<&str>) -> Result<ExitCode> {
    let member = lab.config.member(name)?;
    let url = member.metrics_url();
    let answer = get(&url, &lab.root_cert(), SCRAPE_TIMEOUT)
        .await
        .with_context(|| format!("cannot read the metrics of {name}; is it running?"))?;
    anyhow::ensure!(answer.status == 200, "{url} answered {}: {}", answer.status, answer.body.trim_end());
    let shown = match pattern {
        Some(pattern) => grep(&answer.body, pattern),
        None => answer.body,
    };
    print!("{shown}");
    Ok(if shown.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grep_keeps_whole_matching_lines() {
        let text = "# HELP a_total x\n# TYPE a_total counter\na_total 3\nb 1\n";
        assert_eq!(grep(text, "a_total"), "# HELP a_total x\n# TYPE a_total counter\na_total 3\n");
        assert_eq!(grep(text, "zzz"), "");
    }
}
