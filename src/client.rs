//! An etcd v3 client over mTLS: what the lab supervisor, the benchmark and the tests use to
//! talk to members exactly as etcdctl would.

use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::pki::CertFiles;
use crate::proto::etcdserverpb::WatchRequest;
use crate::proto::etcdserverpb::auth_client::AuthClient;
use crate::proto::etcdserverpb::cluster_client::ClusterClient;
use crate::proto::etcdserverpb::kv_client::KvClient;
use crate::proto::etcdserverpb::lease_client::LeaseClient;
use crate::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::proto::etcdserverpb::watch_client::WatchClient;
use crate::proto::etcdserverpb::watch_request::RequestUnion;

/// One connection to one member, with a stub per etcd service.
#[derive(Clone)]
pub struct EtcdClient {
    pub endpoint: String,
    pub kv: KvClient<Channel>,
    pub maintenance: MaintenanceClient<Channel>,
    pub cluster: ClusterClient<Channel>,
    pub lease: LeaseClient<Channel>,
    pub watch: WatchClient<Channel>,
    pub auth: AuthClient<Channel>,
}

impl EtcdClient {
    /// Connects to `endpoint` (an `https://host:port` URL) with the given certificate.
    pub async fn connect(endpoint: &str, cert: &CertFiles, timeout: Duration) -> Result<EtcdClient> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .with_context(|| format!("bad endpoint {endpoint}"))?
            .tls_config(cert.client_tls()?)?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        Ok(EtcdClient::from_channel(endpoint, channel))
    }

    /// Like `connect`, but the connection is made on first use: for fan-out clients that
    /// must not fail just because one member is down right now.
    pub fn connect_lazy(endpoint: &str, cert: &CertFiles, timeout: Duration) -> Result<EtcdClient> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .with_context(|| format!("bad endpoint {endpoint}"))?
            .tls_config(cert.client_tls()?)?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(EtcdClient::from_channel(endpoint, channel))
    }

    /// A lazy connection with TLS when `cert` is given, plaintext otherwise: for clusters the
    /// app attaches to, which need not be labs (a lab's ports are all mTLS).
    pub fn connect_lazy_maybe_tls(endpoint: &str, cert: Option<&CertFiles>, timeout: Duration) -> Result<EtcdClient> {
        if let Some(cert) = cert {
            return EtcdClient::connect_lazy(endpoint, cert, timeout);
        }
        let channel = Endpoint::from_shared(endpoint.to_string())
            .with_context(|| format!("bad endpoint {endpoint}"))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(EtcdClient::from_channel(endpoint, channel))
    }

    /// Opens a watch stream whose first request creates `create` (and, with
    /// `ask_progress`, asks for a progress notification right after). The sender sends more
    /// requests and keeps the stream open while it lives.
    pub async fn open_watch(
        &mut self,
        create: crate::proto::etcdserverpb::WatchCreateRequest,
        ask_progress: bool,
    ) -> Result<(tokio::sync::mpsc::Sender<WatchRequest>, tonic::Streaming<crate::proto::etcdserverpb::WatchResponse>)>
    {
        let (requests, incoming) = tokio::sync::mpsc::channel(4);
        requests.send(WatchRequest { request_union: Some(RequestUnion::CreateRequest(create)) }).await?;
        if ask_progress {
            let progress = WatchRequest { request_union: Some(RequestUnion::ProgressRequest(Default::default())) };
            requests.send(progress).await?;
        }
        let stream = self
            .watch
            .watch(tokio_stream::wrappers::ReceiverStream::new(incoming))
            .await
            .map_err(|s| anyhow::anyhow!("watch on {}: {}", self.endpoint, s.message()))?
            .into_inner();
        Ok((requests, stream))
    }

    fn from_channel(endpoint: &str, channel: Channel) -> EtcdClient {
        // etcd allows requests up to 1.5 MiB plus gRPC overhead; raise tonic's 4 MiB decode
        // limit for responses, which can be larger than any request (a big range).
        const MAX_RESPONSE: usize = 512 * 1024 * 1024;
        EtcdClient {
            endpoint: endpoint.to_string(),
            kv: KvClient::new(channel.clone()).max_decoding_message_size(MAX_RESPONSE),
            maintenance: MaintenanceClient::new(channel.clone()).max_decoding_message_size(MAX_RESPONSE),
            cluster: ClusterClient::new(channel.clone()),
            lease: LeaseClient::new(channel.clone()),
            auth: AuthClient::new(channel.clone()),
            watch: WatchClient::new(channel).max_decoding_message_size(MAX_RESPONSE),
        }
    }
}

/// Whether a failed call certainly never reached the server: its connection was refused.
/// Such a request had no effect and may be retried, unlike one that timed out.
pub fn never_sent(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        source = e.source();
    }
    false
}

/// The end of the range of keys starting with `prefix`, as etcdctl computes it (etcd's
/// `GetPrefixRangeEnd`): the prefix with its last byte below 0xff increased; "\0" (every key
/// from the prefix on) when all its bytes are 0xff.
pub fn prefix_end(prefix: &[u8]) -> bytes::Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return bytes::Bytes::from(end);
        }
    }
    bytes::Bytes::from_static(b"\0")
}
