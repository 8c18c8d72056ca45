//! The TLS handshakes of every port a member serves (client, peer, metrics).
//!
//! tonic can run the handshakes itself, but then a client it refuses vanishes without a
//! word. A learner who tries an expired or foreign certificate should see why it was
//! refused, so the member accepts TCP connections, runs the handshake here, and names each
//! refusal in its log and on its event bus (`client_refused`: "certificate expired", with
//! the certificate's CN when it presented one). Connections that pass go on to tonic or
//! hyper as ordinary TLS streams; tonic still reads the client's certificate from them.
//!
//! The policy is the same everywhere: the lab's CA is the only trust root, and a client
//! certificate is required (mutual TLS, no plaintext fallback).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use rustls::CertificateError;
use rustls::DigitallySignedStruct;
use rustls::DistinguishedName;
use rustls::Error as TlsError;
use rustls::OtherError;
use rustls::ServerConfig;
use rustls::SignatureScheme;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::UnixTime;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerified;
use rustls::server::danger::ClientCertVerifier;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::node::events;
use crate::pki::CertFiles;
use crate::pki::install_crypto_provider;

/// A client that has not finished its handshake by then is dropped, so a stalled
/// connection cannot hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A server presenting `cert`, offering `alpn`, that accepts only clients holding a
/// certificate from the lab's CA.
pub fn server_config(cert: &CertFiles, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>> {
    install_crypto_provider();
    let webpki = WebPkiClientVerifier::builder(Arc::new(cert.rustls_roots()?))
        .build()
        .context("client certificate verification")?;
    let mut config = ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(NamingVerifier { inner: webpki }))
        .with_single_cert(cert.rustls_chain()?, cert.rustls_key()?)
        .context("the member's certificate")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The TLS connections accepted on `listener`, for tonic's `serve_with_incoming`. Each
/// handshake runs in its own task, so a slow client never delays the others; refusals are
/// reported (see [`handshake`]). Accepting stops when the server drops the stream.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    port: &'static str,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    incoming_diverting(listener, config, port, None)
}

/// A protocol served beside tonic's on one port: connections whose handshake agreed on
/// `alpn` go to `to` instead.
pub struct Divert {
    pub alpn: &'static [u8],
    pub to: Box<dyn Fn(TlsStream<TcpStream>) + Send + Sync>,
}

/// [`incoming`], less the connections `divert` takes.
pub fn incoming_diverting(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    port: &'static str,
    divert: Option<Divert>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let divert = divert.map(Arc::new);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, addr) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    tracing::warn!("{port} port: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let divert = divert.clone();
            tokio::spawn(async move {
                let Some(tls) = handshake(&acceptor, tcp, addr, port).await else { return };
                match divert {
                    Some(divert) if tls.get_ref().1.alpn_protocol() == Some(divert.alpn) => (divert.to)(tls),
                    _ => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Runs the server side of the handshake on `tcp`. A client refused for its certificate
/// (none, a foreign CA, expired, not for client use) is named in the log and on the event
/// bus; one that merely hangs up or speaks something else than TLS only in the debug log,
/// as port probes do that all the time.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
    port: &str,
) -> Option<TlsStream<TcpStream>> {
    // Small gRPC frames would otherwise wait for the peer's delayed ACK.
    let _ = tcp.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            match Refusal::of(&e) {
                Some(refusal) => refusal.report(port, addr),
                None => tracing::debug!("{port} port: handshake with {addr} failed: {e}"),
            }
            None
        }
        Err(_) => {
            tracing::debug!("{port} port: handshake with {addr} timed out");
            None
        }
    }
}

/// Why a client's certificate was not accepted, in a learner's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    /// The CN of the certificate presented, if there was one.
    pub common_name: Option<String>,
}

impl Refusal {
    /// The refusal behind a failed handshake, or None when it failed for another reason
    /// than the client's certificate.
    pub fn of(error: &std::io::Error) -> Option<Refusal> {
        let tls = error.get_ref()?.downcast_ref::<TlsError>()?;
        match tls {
            TlsError::NoCertificatesPresented => {
                Some(Refusal { reason: "no client certificate".into(), common_name: None })
            }
            TlsError::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
                inner.downcast_ref::<Refusal>().cloned()
            }
            TlsError::InvalidCertificate(e) => Some(Refusal { reason: reason(e), common_name: None }),
            _ => None,
        }
    }

    fn report(&self, port: &str, addr: SocketAddr) {
        let who = self.common_name.as_deref().map(|cn| format!(" (CN {cn})")).unwrap_or_default();
        tracing::warn!("{port} port refused a client from {addr}{who}: {}", self.reason);
        let mut fields = vec![("reason", self.reason.clone()), ("port", port.to_string()), ("from", addr.to_string())];
        if let Some(cn) = &self.common_name {
            fields.push(("cn", cn.clone()));
        }
        events::emit("client_refused", &fields);
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Refusal {}

fn reason(e: &CertificateError) -> String {
    match e {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "certificate expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".into()
        }
        CertificateError::UnknownIssuer => "certificate signed by a foreign CA".into(),
        CertificateError::BadSignature => "certificate signature does not verify".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate not for client authentication (wrong key usage)".into()
        }
        CertificateError::Revoked => "certificate revoked".into(),
        // webpki's own findings, such as a CA certificate presented as a client's.
        CertificateError::Other(OtherError(inner)) => match format!("{inner:?}").as_str() {
            "CaUsedAsEndEntity" => "a CA certificate presented as a client certificate".into(),
            finding => format!("certificate refused ({finding})"),
        },
        other => format!("certificate refused ({other})"),
    }
}

/// webpki's verification, keeping the CN of a certificate it refuses so the refusal can
/// name who it was. The refusal travels inside rustls' error to [`Refusal::of`]; the
/// client is told "bad certificate", as Go's TLS (so etcd) tells it.
#[derive(Debug)]
struct NamingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for NamingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        self.inner.verify_client_cert(end_entity, intermediates, now).map_err(|e| {
            let reason = match &e {
                TlsError::InvalidCertificate(c) => reason(c),
                other => format!("certificate refused ({other})"),
            };
            let common_name = crate::pki::common_name(end_entity.as_ref());
            TlsError::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refusal { reason, common_name }))))
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
