//! Every member serves Prometheus metrics with etcd's names over mutual TLS, read here
//! through `raftty metrics` the way a person would; clients without a certificate of the
//! lab's CA get nothing; and the metrics follow the cluster when it loses its quorum.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use common::*;
use raftty::lab::Lab;
use raftty::lab::scrape;
use raftty::pki::CertFiles;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

const MEMBERS: [&str; 3] = ["n1", "n2", "n3"];

/// The value of the sample `series` (metric name with its labels, if any) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.strip_prefix(series))
        .find_map(|rest| rest.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn scrape_cli(lab: &TestLab, member: &str) -> String {
    lab.raftty_ok(&["metrics", member])
}

/// Polls `check` until it passes; panics with what was awaited and the last reason it gave.
fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(()) => return,
            Err(why) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {why}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)), // poll
        }
    }
}

fn ids(lab: &TestLab) -> BTreeMap<String, String> {
    lab.status()["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let field = |k: &str| n[k].as_str().expect(k).to_string();
            (field("name"), field("id"))
        })
        .collect()
}

fn metrics_url(lab: &TestLab, member: &str) -> String {
    lab.node(member)["metrics_url"].as_str().expect("metrics_url").to_string()
}

fn health_url(lab: &TestLab, member: &str) -> String {
    metrics_url(lab, member).replace("/metrics", "/health")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// What a client gets back after sending an HTTP request over `stream`: the bytes read, or
/// the error that ended the exchange.
async fn send_get<S>(mut stream: S) -> std::io::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .map_err(|_| std::io::Error::other("no answer within 10 s"))??;
    Ok(answer)
}

/// A TLS client that trusts the lab's CA but presents no certificate.
async fn scrape_without_client_certificate(url: &str, ca: &std::path::Path) -> String {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::ServerName;
    use rustls::pki_types::pem::PemObject;
    raftty::pki::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("CA usable");
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let address = url.trim_start_matches("https://").trim_end_matches("/metrics");
    let tcp = tokio::net::TcpStream::connect(address).await.expect("the metrics port accepts TCP");
    let server = ServerName::try_from("127.0.0.1").expect("server name");
    match tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server, tcp).await {
        Err(e) => format!("handshake refused: {e}"),
        Ok(tls) => match send_get(tls).await {
            Err(e) => format!("refused after the handshake: {e}"),
            Ok(answer) => {
                assert!(
                    !answer.starts_with(b"HTTP/"),
                    "a client without a certificate got an HTTP answer:\n{}",
                    String::from_utf8_lossy(&answer)
                );
                "closed without an answer".into()
            }
        },
    }
}

#[test]
fn every_member_serves_etcds_metrics_over_mtls() {
    let lab = TestLab::up(3);
    const WRITES: f64 = 10.0;
    for i in 0..WRITES as usize {
        lab.etcdctl_ok(&["put", &format!("/metrics/key-{i}"), "value"]);
    }
    let ids = ids(&lab);
    let leader = lab.leader();

    eventually(
        Duration::from_secs(30),
        "every member to show a live leader, the writes committed, applied and fsynced, and \
         the leader to time heartbeats to both followers",
        || {
            let texts: BTreeMap<&str, String> = MEMBERS.iter().map(|m| (*m, scrape_cli(&lab, m))).collect();
            let leading: Vec<&str> =
                texts.iter().filter(|(_, t)| value(t, "etcd_server_is_leader") == Some(1.0)).map(|(m, _)| *m).collect();
            if leading != [leader.as_str()] {
                return Err(format!("etcd_server_is_leader is 1 on {leading:?}, status says {leader} leads"));
            }
            for (member, text) in &texts {
                let at_least = |series: &str, floor: f64| match value(text, series) {
                    Some(v) if v >= floor => Ok(()),
                    other => Err(format!("{member}: {series} is {other:?}, want >= {floor}")),
                };
                at_least("etcd_server_has_leader", 1.0)?;
                at_least("etcd_server_leader_changes_seen_total", 1.0)?;
                at_least("etcd_server_proposals_committed_total", WRITES)?;
                at_least("etcd_server_proposals_applied_total", WRITES)?;
                at_least("etcd_disk_wal_fsync_duration_seconds_count", 1.0)?;
                at_least("etcd_disk_backend_commit_duration_seconds_count", 1.0)?;
                at_least("etcd_mvcc_db_total_size_in_bytes", 1.0)?;
                at_least("process_resident_memory_bytes", 1.0)?;
                at_least(&format!("etcd_server_id{{server_id=\"{}\"}}", ids[*member]), 1.0)?;
            }
            for follower in MEMBERS.iter().filter(|m| **m != leader) {
                let series = format!("etcd_network_peer_round_trip_time_seconds_count{{To=\"{}\"}}", ids[*follower]);
                match value(&texts[leader.as_str()], &series) {
                    Some(n) if n > 0.0 => {}
                    other => return Err(format!("leader {leader}: {series} is {other:?}")),
                }
            }
            Ok(())
        },
    );

    // The text is Prometheus' exposition format with etcd's types.
    let text = scrape_cli(&lab, &leader);
    for line in [
        "# TYPE etcd_server_has_leader gauge",
        "# TYPE etcd_server_leader_changes_seen_total counter",
        "# TYPE etcd_server_proposals_committed_total gauge",
        "# TYPE etcd_server_proposals_failed_total counter",
        "# TYPE etcd_disk_wal_fsync_duration_seconds histogram",
        "# TYPE etcd_network_peer_round_trip_time_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert_eq!(value(&text, "etcd_server_proposals_pending"), Some(0.0));

    // --grep keeps the matching lines, and like grep fails when none matches.
    let grepped = lab.raftty_ok(&["metrics", "n1", "--grep", "etcd_server_has_leader"]);
    assert!(!grepped.is_empty());
    assert!(grepped.lines().all(|l| l.contains("etcd_server_has_leader")), "{grepped}");
    let nothing = lab.raftty(&["metrics", "n1", "--grep", "no_such_metric"]);
    assert_eq!(nothing.status.code(), Some(1), "{}", describe(&nothing));
    assert!(nothing.stdout.is_empty());

    let lab_files = Lab::open_dir(&lab.dir()).expect("lab");
    let root = root_cert(&lab);
    runtime().block_on(async {
        // /health as etcd answers it; unknown paths are 404.
        let health = scrape::get(&health_url(&lab, "n2"), &root, Duration::from_secs(10)).await.expect("/health");
        assert_eq!((health.status, health.body.as_str()), (200, r#"{"health":"true"}"#));
        let missing =
            scrape::get(&metrics_url(&lab, "n2").replace("/metrics", "/nothing-here"), &root, Duration::from_secs(10))
                .await
                .expect("an answer");
        assert_eq!(missing.status, 404);

        // Any certificate the lab's CA issued may scrape: here a member's own.
        let as_member = scrape::get(&metrics_url(&lab, "n1"), &lab_files.member_cert("n3"), Duration::from_secs(10))
            .await
            .expect("a member certificate may scrape");
        assert_eq!(as_member.status, 200);

        // A client trusting the lab's CA but presenting no certificate gets no HTTP at all.
        let refused = scrape_without_client_certificate(&metrics_url(&lab, "n1"), &root.ca).await;
        eprintln!("without a client certificate: {refused}");

        // Plaintext HTTP on the metrics port gets no HTTP answer either.
        let address = metrics_url(&lab, "n1").trim_start_matches("https://").trim_end_matches("/metrics").to_string();
        let tcp = tokio::net::TcpStream::connect(&address).await.expect("TCP connect");
        if let Ok(answer) = send_get(tcp).await {
            assert!(
                !answer.starts_with(b"HTTP/"),
                "plaintext HTTP got an answer:\n{}",
                String::from_utf8_lossy(&answer)
            );
        }

        // A certificate from another CA is refused, even by a client that trusts the lab.
        let stranger_dir = tempfile::tempdir().expect("temp dir");
        let stranger = raftty::pki::Pki::create(stranger_dir.path()).expect("another CA");
        let foreign = stranger.files(raftty::pki::ROOT_NAME);
        let impostor = CertFiles { ca: root.ca.clone(), cert: foreign.cert, key: foreign.key };
        let outcome = scrape::get(&metrics_url(&lab, "n1"), &impostor, Duration::from_secs(10)).await;
        assert!(outcome.is_err(), "a certificate from another CA scraped: {outcome:?}");
    });
}

#[test]
fn losing_the_quorum_shows_in_has_leader_health_and_failed_proposals() {
    let lab = TestLab::up(3);
    let leader = lab.leader();
    let survivor = MEMBERS.iter().find(|m| **m != leader).expect("a follower");
    for member in MEMBERS.iter().filter(|m| *m != survivor) {
        kill9(&lab, member);
    }

    eventually(Duration::from_secs(20), &format!("{survivor}, alone, to report that it has no leader"), || {
        let text = scrape_cli(&lab, survivor);
        match value(&text, "etcd_server_has_leader") {
            Some(0.0) => Ok(()),
            other => Err(format!("etcd_server_has_leader is {other:?}")),
        }
    });

    let root = root_cert(&lab);
    let health = runtime()
        .block_on(scrape::get(&health_url(&lab, survivor), &root, Duration::from_secs(10)))
        .expect("/health answers");
    assert_eq!(health.status, 503, "{health:?}");
    assert!(health.body.starts_with(r#"{"health":"false","reason":""#), "{health:?}");

    // A write the client gives up on counts as a failed proposal, and is no longer pending.
    let failed = lab.etcdctl_on(survivor, &["--command-timeout=2s", "put", "/metrics/lost", "value"]);
    assert!(!failed.status.success(), "{}", describe(&failed));
    eventually(Duration::from_secs(20), "the abandoned write to count as a failed proposal", || {
        let text = scrape_cli(&lab, survivor);
        let failed = value(&text, "etcd_server_proposals_failed_total");
        let pending = value(&text, "etcd_server_proposals_pending");
        if failed >= Some(1.0) && pending == Some(0.0) {
            Ok(())
        } else {
            Err(format!("failed {failed:?}, pending {pending:?}"))
        }
    });
}
