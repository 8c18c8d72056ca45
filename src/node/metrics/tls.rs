//! rustls settings of the metrics port and of its scraper. The gRPC ports get theirs from
//! tonic; this port is plain HTTPS, so it builds the same policy directly: the lab's CA is
//! the only trust root, and the server requires a client certificate that CA issued.

use std::sync::Arc;

use anyhow::Context;
use anyhow::Result;
use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;

use crate::pki::CertFiles;
use crate::pki::install_crypto_provider;

/// Prometheus scrapes over HTTP/1.1; it is the only protocol offered.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A server presenting `cert` that accepts only clients with a certificate from its CA.
pub fn server_config(cert: &CertFiles) -> Result<Arc<ServerConfig>> {
    install_crypto_provider();
    let verifier = WebPkiClientVerifier::builder(Arc::new(trust_root(cert)?))
        .build()
        .context("client certificate verification for the metrics port")?;
    let mut config = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(cert)?, key(cert)?)
        .context("the metrics port's certificate")?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// A client presenting `cert` that trusts only servers with a certificate from its CA.
pub fn client_config(cert: &CertFiles) -> Result<Arc<ClientConfig>> {
    install_crypto_provider();
    let mut config = ClientConfig::builder()
        .with_root_certificates(trust_root(cert)?)
        .with_client_auth_cert(chain(cert)?, key(cert)?)
        .context("the scraper's client certificate")?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

fn trust_root(cert: &CertFiles) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&cert.ca)
        .with_context(|| format!("reading CA certificate {}", cert.ca.display()))?
    {
        let ca = ca.with_context(|| format!("parsing CA certificate {}", cert.ca.display()))?;
        roots.add(ca).with_context(|| format!("using CA certificate {}", cert.ca.display()))?;
    }
    Ok(roots)
}

fn chain(cert: &CertFiles) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(&cert.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificate {}", cert.cert.display()))
}

fn key(cert: &CertFiles) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(&cert.key).with_context(|| format!("reading private key {}", cert.key.display()))
}
