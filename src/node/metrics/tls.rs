//! rustls settings of the metrics port's scraper (the supervisor's side): the lab's CA is
//! the only trust root, and it presents a certificate that CA issued. The port's own side
//! is `node::tls`, shared with the gRPC ports.

use std::sync::Arc;

use anyhow::Context;
use anyhow::Result;
use rustls::ClientConfig;

use crate::node::tls::ALPN_HTTP1;
use crate::pki::CertFiles;
use crate::pki::install_crypto_provider;

/// A client presenting `cert` that trusts only servers with a certificate from its CA.
/// Prometheus scrapes over HTTP/1.1; it is the only protocol offered.
pub fn client_config(cert: &CertFiles) -> Result<Arc<ClientConfig>> {
    install_crypto_provider();
    let mut config = ClientConfig::builder()
        .with_root_certificates(cert.rustls_roots()?)
        .with_client_auth_cert(cert.rustls_chain()?, cert.rustls_key()?)
        .context("the scraper's client certificate")?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}
