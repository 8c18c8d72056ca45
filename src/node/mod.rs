//! `raftty node`: one cluster member, in its own process.
//!
//! It opens its storage (refusing data that is damaged or belongs to someone else), starts
//! Raft, binds its ports (all mTLS), bootstraps the cluster together with the other initial
//! members the first time, and serves until SIGTERM or SIGINT.

pub mod admin;
pub mod api;
pub mod auth;
pub mod events;
pub mod faults;
pub mod lease;
pub mod member;
pub mod memory;
pub mod metrics;
pub mod mvcc;
pub mod quota;
pub mod raft;
pub mod recorder;
pub mod step;
pub mod tls;
pub mod watch;
pub mod write_stages;

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;
use openraft::Config;
use openraft::SnapshotPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftLogStorage;
use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::lab::Lab;
use crate::lab::SnapshotSettings;
use crate::lab::Tempo;
use crate::lab::faults::FAULTS_FILE;
use crate::lab::faults::LabFaults;
use crate::node::admin::AdminService;
use crate::node::faults::FaultState;
use crate::node::member::Member;
use crate::node::raft::append_link;
use crate::node::raft::log_store::LogStore;
use crate::node::raft::network::MAX_PEER_MESSAGE;
use crate::node::raft::network::PeerChannels;
use crate::node::raft::network::PeerNetwork;
use crate::node::raft::observer;
use crate::node::raft::peer_service::PeerService;
use crate::node::raft::state_machine::StateMachineStore;
use crate::node::raft::types::*;
use crate::pki;
use crate::proto::etcdserverpb::cluster_server::ClusterServer;
use crate::proto::etcdserverpb::kv_server::KvServer;
use crate::proto::etcdserverpb::lease_server::LeaseServer;
use crate::proto::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::proto::etcdserverpb::watch_server::WatchServer;
use crate::proto::rafttyadmin::admin_server::AdminServer;
use crate::proto::rafttypb::lease_peer_server::LeasePeerServer;
use crate::proto::rafttypb::raft_peer_server::RaftPeerServer;

pub fn run(lab_dir: &Path, name: &str) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    memory::init_from_env().map_err(|e| anyhow::anyhow!("member {name} cannot start: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(serve(lab_dir, name));
    if let Err(e) = &result {
        tracing::error!("member {name} stops: {e:#}");
    }
    result
}

/// openraft's settings for a lab's tempo.
///
/// The lab's election timeout means what it means in etcd: how long a follower goes without
/// hearing from a leader before it campaigns. An openraft follower campaigns after its leader
/// lease (`election_timeout_max`) plus a random `election_timeout` in [min, max], and votes
/// for nobody else until its own lease has run out. With min and max at 40% and 60% of the
/// lab's timeout, a follower campaigns between 1.0 and 1.2 election timeouts after the last
/// heartbeat, by which time every other follower's lease has expired: the first candidate
/// usually wins at once. (etcd campaigns between 1 and 2 election timeouts.)
pub fn raft_config(lab_name: &str, tempo: Tempo, snapshots: SnapshotSettings) -> Result<Arc<Config>> {
    let config = Config {
        cluster_name: lab_name.to_string(),
        heartbeat_interval: tempo.heartbeat_ms,
        election_timeout_min: tempo.election_timeout_ms * 2 / 5,
        election_timeout_max: tempo.election_timeout_ms * 3 / 5,
        // A state that grows its own interval is snapshotted by `snapshot_when_due`.
        snapshot_policy: if snapshots.grows_with_state {
            SnapshotPolicy::Never
        } else {
            SnapshotPolicy::LogsSinceLast(snapshots.every)
        },
        max_in_snapshot_log_to_keep: snapshots.keep_log,
        install_snapshot_timeout: 10_000,
        // A member that comes back from a partition first checks that it could win
        // before bumping its term, so it does not depose a healthy leader (etcd 3.5's default).
        enable_pre_vote: Some(true),
        // Like etcd, the leader sends new entries to followers while its own fsync is still
        // running: replication and the local write overlap instead of adding up.
        broadcast_submitted_on_append: Some(true),
        // Standard Raft: a restarted leader must win a new election. openraft can instead let
        // it resume leading at once, but this state machine and the committed index reach
        // the disk lazily (the log is what is durable), so such a leader could serve reads
        // from a state older than what clients already saw. A new election makes the new
        // leader commit an entry of its own term first, which brings every member's state
        // up to date before any linearizable read is served. (Found by `raftty torture`.)
        enable_leader_restore: Some(false),
        ..Default::default()
    };
    Ok(Arc::new(config.validate().context("invalid Raft timing")?))
}

/// A seeded state is in no log entry: a member that joins later and is sent the log from
/// the start would never get it. So, once the first entry is applied, the seed goes into a
/// snapshot and the log before it is purged: from then on a newcomer gets the snapshot.
async fn snapshot_the_seed(raft: crate::node::raft::types::Raft) {
    let applied = loop {
        let applied = raft.metrics().borrow_watched().last_applied.map(|l| l.index);
        if let Some(index) = applied {
            break index;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if let Err(e) = raft.trigger().snapshot().await {
        tracing::warn!("snapshot of the restored state: {e}");
        return;
    }
    loop {
        let snapshot = raft.metrics().borrow_watched().snapshot.map(|s| s.index);
        if let Some(index) = snapshot.filter(|i| *i >= applied) {
            if let Err(e) = raft.trigger().purge_log(index).await {
                tracing::warn!("purging the log before the restored state's snapshot: {e}");
            }
            tracing::info!("the restored state is in snapshot {index}; the log before it is purged");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn serve(lab_dir: &Path, name: &str) -> Result<()> {
    // Taken over before anything else: by default SIGTERM ends a process without a word, so
    // a member asked to stop while it starts would vanish with nothing in its log. Caught,
    // the request waits until the member serves, and it then stops cleanly.
    // Must run on the thread that runs `block_on` (see `StopSignal::install`).
    let stop_signal = StopSignal::install()?;
    pki::install_crypto_provider();
    let lab = Lab::open_dir(lab_dir)?;
    let me = lab.config.member(name)?.clone();
    anyhow::ensure!(
        !me.removed,
        "member {name} was removed from lab {}; a removed member never starts again",
        lab.name()
    );
    let cert = lab.member_cert(name);
    let identity = StoreIdentity { cluster_id: lab.config.cluster_id, member_id: me.id };
    let data_dir = lab.member_data_dir(name);
    // Fresh means no Raft log yet: a restore seeds the state file of members that never ran.
    let fresh = !data_dir.join(crate::node::raft::log_store::LOG_FILE_NAME).exists();
    pki::create_private_dir(&data_dir)?;
    tracing::info!("member {name} ({:x}) of lab {} starting in {}", me.id, lab.name(), data_dir.display());

    let mut log_store = LogStore::open(&data_dir, identity)
        .with_context(|| format!("member {name} cannot use its Raft log in {}", data_dir.display()))?;
    let log_reader = log_store.get_log_reader().await;
    let state_machine = StateMachineStore::open(&data_dir, identity)
        .with_context(|| format!("member {name} cannot use its state in {}", data_dir.display()))?;
    // A state seeded by a restore or a recover, that no log entry explains yet.
    let seeded = fresh
        && state_machine.mvcc().applied_state().last_applied.is_none()
        && state_machine.mvcc().current_revision() > 1;

    // Bind before joining: a member that cannot serve should not take part in elections.
    let mut inherited = inherited_listeners()?;
    let client_listener = listener(&mut inherited, me.client_port, "client").await?;
    let peer_listener = listener(&mut inherited, me.peer_port, "peer").await?;
    let metrics_listener = listener(&mut inherited, me.metrics_port, "metrics").await?;

    events::init(me.id, name);
    let faults = Arc::new(FaultState::new(me.id, LabFaults::load(lab_dir)?.to_table(&lab.config)));
    tokio::spawn(follow_fault_file(lab_dir.to_path_buf(), faults.clone()));
    let channels = PeerChannels::new(me.id, me.name.clone(), cert.clone(), faults);
    let member_metrics = metrics::MemberMetrics::new(
        me.id,
        metrics::families::StorageSources {
            wal: log_store.stats(),
            state: state_machine.mvcc().clone(),
            peers: channels.round_trips(),
        },
    )?;
    let config = raft_config(lab.name(), lab.config.tempo, lab.config.snapshots)?;
    let raft = Raft::new(me.id, config, PeerNetwork::new(channels.clone()), log_store, state_machine.clone())
        .await
        .context("starting Raft")?;
    let request_timeout = Duration::from_secs(5) + 2 * Duration::from_millis(lab.config.tempo.election_timeout_ms);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let member = Arc::new(Member {
        id: me.id,
        name: name.to_string(),
        cluster_id: lab.config.cluster_id,
        raft: raft.clone(),
        state_machine,
        peers: channels,
        cert: cert.clone(),
        request_timeout,
        metrics: member_metrics.clone(),
        quota: crate::node::quota::Quota::from_flag(lab.config.quota_backend_bytes),
        stopping: stop_rx.clone(),
        tokens: Default::default(),
    });
    member_metrics.follow(&raft);

    tokio::spawn(observer::narrate(member.clone()));
    tokio::spawn(recorder::record(
        lab_dir.to_path_buf(),
        member.clone(),
        AdminService::new(member.clone(), log_reader.clone()),
    ));
    tokio::spawn(keep_state_durable(member.state_machine.mvcc().clone()));
    if lab.config.snapshots.grows_with_state {
        tokio::spawn(crate::node::raft::snapshot_policy::snapshot_when_due(
            raft.clone(),
            member.state_machine.mvcc().clone(),
            lab.config.snapshots.every,
        ));
    }
    {
        let member = member.clone();
        let me = MemberNode { name: name.to_string(), peer_url: me.peer_url(), client_url: me.client_url() };
        tokio::spawn(async move { member.publish_self(me).await });
    }

    let election_timeout = Duration::from_millis(lab.config.tempo.election_timeout_ms);
    let watch_settings = crate::node::watch::WatchSettings::for_member(election_timeout)?;
    let lessor = crate::node::lease::Lessor::start(
        member.clone(),
        crate::node::lease::LeaseSettings::for_member(election_timeout)?,
    );

    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let peer_server = Server::builder()
        .add_service(
            RaftPeerServer::new(PeerService::new(member.clone()))
                .max_decoding_message_size(MAX_PEER_MESSAGE)
                .max_encoding_message_size(MAX_PEER_MESSAGE),
        )
        .add_service(AdminServer::new(AdminService::new(member.clone(), log_reader)))
        .add_service(LeasePeerServer::new(crate::node::lease::peer::LeasePeerService::new(lessor.clone())))
        .serve_with_incoming_shutdown(
            tls::incoming_diverting(
                peer_listener,
                tls::server_config(&cert, &[tls::ALPN_H2, append_link::ALPN])?,
                "peer",
                Some(append_link::divert(member.clone())),
            ),
            stopped(stop_rx.clone()),
        );
    let gateway = api::gateway::GatewayLayer {
        gateway: Arc::new(api::gateway::Gateway {
            kv: api::kv::KvService::new(member.clone()),
            lease: api::lease::LeaseService::new(member.clone(), lessor.clone()),
            cluster: api::cluster::ClusterService::new(member.clone()),
            maintenance: api::maintenance::MaintenanceService::new(member.clone()),
            auth: api::auth::AuthService::new(member.clone()),
            watch: api::watch::WatchService::new(member.clone(), watch_settings),
        }),
    };
    let client_server = Server::builder()
        // etcd's JSON gateway shares the port: HTTP/1.1 (curl) as well as HTTP/2.
        .accept_http1(true)
        .layer(gateway)
        .add_service(
            KvServer::new(api::kv::KvService::new(member.clone())).max_decoding_message_size(api::MAX_GRPC_MESSAGE),
        )
        .add_service(
            ClusterServer::new(api::cluster::ClusterService::new(member.clone()))
                .max_decoding_message_size(api::MAX_GRPC_MESSAGE),
        )
        .add_service(
            MaintenanceServer::new(api::maintenance::MaintenanceService::new(member.clone()))
                .max_decoding_message_size(api::MAX_GRPC_MESSAGE),
        )
        .add_service(
            WatchServer::new(api::watch::WatchService::new(member.clone(), watch_settings))
                .max_decoding_message_size(api::MAX_GRPC_MESSAGE),
        )
        .add_service(
            LeaseServer::new(api::lease::LeaseService::new(member.clone(), lessor.clone()))
                .max_decoding_message_size(api::MAX_GRPC_MESSAGE),
        )
        .add_service(
            crate::proto::etcdserverpb::auth_server::AuthServer::new(api::auth::AuthService::new(member.clone()))
                .max_decoding_message_size(api::MAX_GRPC_MESSAGE),
        )
        .serve_with_incoming_shutdown(
            tls::incoming(client_listener, tls::server_config(&cert, &[tls::ALPN_H2, tls::ALPN_HTTP1])?, "client"),
            stopped(stop_rx.clone()),
        );
    let peer_task = tokio::spawn(peer_server);
    let client_task = tokio::spawn(client_server);
    let metrics_task = metrics::http::start(
        metrics_listener,
        &cert,
        metrics::http::Endpoint { metrics: member_metrics, health: member.clone() },
        stopped(stop_rx.clone()),
    )?;

    if fresh && me.initial && !lab.config.bootstrapped {
        // Every initial member proposes the same first configuration; openraft accepts the
        // identical initialization from each of them.
        let initial: BTreeMap<NodeId, MemberNode> = lab
            .config
            .members
            .iter()
            .filter(|m| m.initial && !m.removed)
            .map(|m| (m.id, MemberNode { name: m.name.clone(), peer_url: m.peer_url(), client_url: m.client_url() }))
            .collect();
        let first = initial.keys().next() == Some(&me.id);
        match raft.initialize(initial).await {
            // A fresh cluster has no leader to wait for: rather than sit out a whole election
            // timeout, one initial member campaigns at once (etcd fast-forwards its ticks).
            Ok(()) if first => {
                if let Err(e) = raft.trigger().elect(true).await {
                    tracing::warn!("first election: {e}");
                }
            }
            Ok(()) => {}
            Err(e) => tracing::warn!("cluster bootstrap: {e}"),
        }
    }
    if seeded {
        tokio::spawn(snapshot_the_seed(raft.clone()));
    }
    tracing::info!("member {name} serving clients on {} and peers on {}", me.client_url(), me.peer_url());

    stop_signal.received().await;
    tracing::info!("member {name} stopping");
    let _ = stop_tx.send(true);
    raft.shutdown().await.map_err(|e| anyhow::anyhow!("stopping Raft: {e}"))?;
    // Applies are made durable lazily; a clean stop makes them durable now, so the next
    // start does not have to replay them.
    member.state_machine.mvcc().flush().context("flushing the state to disk")?;
    let servers_done = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = peer_task.await;
        let _ = client_task.await;
        let _ = metrics_task.await;
    })
    .await;
    match servers_done {
        Ok(()) => tracing::info!("member {name} stopped"),
        Err(_) => tracing::warn!("member {name} stopped; its servers had not finished within 5 s"),
    }
    Ok(())
}

/// Keeps the member's fault table in step with the lab's `faults.json`: changes are also
/// pushed over the admin surface, but a member that was paused or down when they were made
/// picks them up here.
async fn follow_fault_file(lab_dir: PathBuf, faults: Arc<FaultState>) {
    let mut last_modified = None;
    loop {
        let modified = std::fs::metadata(lab_dir.join(FAULTS_FILE)).and_then(|m| m.modified()).ok();
        if modified != last_modified {
            last_modified = modified;
            match (LabFaults::load(&lab_dir), Lab::open_dir(&lab_dir)) {
                (Ok(lab_faults), Ok(lab)) => {
                    faults.update(lab_faults.to_table(&lab.config));
                }
                (Err(e), _) | (_, Err(e)) => tracing::warn!("reading the lab's faults: {e:#}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The listeners the supervisor reserved for this member (see `lab::process`), in the order
/// client, peer, metrics; none when started by hand.
fn inherited_listeners() -> Result<std::collections::VecDeque<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    let Ok(fds) = std::env::var(crate::lab::process::LISTEN_FDS_ENV) else { return Ok(Default::default()) };
    fds.split(',')
        .filter(|f| !f.is_empty())
        .map(|f| {
            let fd: i32 = f.parse().with_context(|| format!("bad inherited listener {f:?}"))?;
            // Safety: the supervisor left a listening socket open under this number for us alone.
            let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
        .collect()
}

/// The next inherited listener if it is on `port`, else a new one.
async fn listener(
    inherited: &mut std::collections::VecDeque<std::net::TcpListener>,
    port: u16,
    what: &str,
) -> Result<TcpListener> {
    if let Some(l) = inherited.pop_front() {
        let local = l.local_addr()?.port();
        anyhow::ensure!(local == port, "the supervisor handed over port {local} for the {what} port {port}");
        return Ok(TcpListener::from_std(l)?);
    }
    bind(port, what).await
}

async fn bind(port: u16, what: &str) -> Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on the {what} port 127.0.0.1:{port}; is something else using it?"))
}

/// Makes the applied state durable now and then, off the request path (see
/// `MvccStore::flush_if_due`): a client's write waits only for the Raft log's fsync.
async fn keep_state_durable(mvcc: Arc<crate::node::mvcc::MvccStore>) {
    let mut tick = tokio::time::interval(crate::node::mvcc::DURABLE_EVERY / 4);
    loop {
        tick.tick().await;
        let store = mvcc.clone();
        match tokio::task::spawn_blocking(move || store.flush_if_due()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("making the applied state durable: {e}"),
            Err(e) => tracing::error!("making the applied state durable: {e}"),
        }
    }
}

/// SIGTERM or SIGINT, caught from the moment it is installed.
struct StopSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> Result<Self> {
        use tokio::signal::unix::SignalKind;
        use tokio::signal::unix::signal;
        let caught = Self { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? };
        // The lab starts members with these signals blocked (`Lab::spawn_member`); one sent
        // since then is delivered now, to the handler. This thread runs the runtime's
        // `block_on`, so it lives as long as the member does.
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
            Some(&crate::lab::process::stop_signals()),
            None,
        )?;
        Ok(caught)
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
