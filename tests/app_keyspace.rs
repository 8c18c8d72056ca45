//! The Keys tab's reads against a real lab: the keyspace comes in pages (a big keyspace in
//! one range would hit gRPC's message limit), every page at the revision of the first, and
//! the tree can be read as it stood at an earlier revision.

mod common;

use std::time::Duration;

use bytes::Bytes;
use raftty::client::EtcdClient;
use raftty::proto::etcdserverpb::PutRequest;
use raftty::proto::etcdserverpb::RequestOp;
use raftty::proto::etcdserverpb::TxnRequest;
use raftty::proto::etcdserverpb::request_op::Request;

/// More than two pages of the app's 5000 keys.
const KEYS: usize = 12_345;

#[tokio::test(flavor = "multi_thread")]
async fn the_key_tree_reads_every_key_in_pages_and_at_an_earlier_revision() {
    let lab = common::TestLab::up(1);
    let mut client = EtcdClient::connect(&lab.client_url("n1"), &common::root_cert(&lab), Duration::from_secs(10))
        .await
        .expect("a client");
    let mut half = 0;
    for (batch, keys) in (0..KEYS).collect::<Vec<_>>().chunks(128).enumerate() {
        let success = keys
            .iter()
            .map(|i| RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: Bytes::from(format!("/registry/pods/ns{:02}/pod-{i:05}", i % 7)),
                    value: Bytes::from_static(b"{}"),
                    ..Default::default()
                })),
            })
            .collect();
        let r = client.kv.txn(TxnRequest { success, ..Default::default() }).await.expect("a txn of puts").into_inner();
        if batch == 10 {
            half = r.header.expect("a header").revision;
        }
    }
    let (keys, revision) = raftty::tui::io::keys::load_all(&mut client, 0).await.expect("the whole keyspace");
    assert_eq!(keys.len(), KEYS, "every key, across pages");
    assert!(keys.windows(2).all(|w| w[0].0 < w[1].0), "keys come in order, each once");
    assert_eq!(revision, common::current_revision(&client).await, "read at the revision of the first page");

    let (then, at) =
        raftty::tui::io::keys::load_all(&mut client, half).await.expect("the keyspace at an older revision");
    assert_eq!(at, half);
    assert_eq!(then.len(), 11 * 128, "the tree as it stood after the eleventh txn");
    assert!(then.iter().all(|(_, meta)| meta.mod_revision <= half));
}
