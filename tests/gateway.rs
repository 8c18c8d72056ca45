//! etcd's HTTP/JSON gateway on a lab member's client port, spoken by an HTTP client over
//! mTLS as curl would: put, range, txn, a lease, the token flow, and etcd's JSON mapping
//! (base64 bytes, 64-bit integers as strings) and error bodies.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::Value;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

struct Gateway {
    url: String,
    cert: raftty::pki::CertFiles,
    runtime: tokio::runtime::Runtime,
}

impl Gateway {
    fn post_raw(&self, path: &str, body: Value, token: Option<&str>) -> (u16, String) {
        let url = format!("{}{path}", self.url);
        let answer = self
            .runtime
            .block_on(raftty::lab::scrape::post_json(
                &url,
                &self.cert,
                &body.to_string(),
                token,
                Duration::from_secs(10),
            ))
            .unwrap_or_else(|e| panic!("POST {path}: {e:#}"));
        (answer.status, answer.body)
    }

    fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let (status, body) = self.post_raw(path, body, token);
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("POST {path} answered no JSON ({e}): {body}"));
        (status, json)
    }
}

#[test]
fn the_gateway_serves_kv_txn_leases_and_tokens_in_etcds_json() {
    let lab = TestLab::up(3);
    let gw =
        Gateway { url: lab.client_url("n2"), cert: root_cert(&lab), runtime: tokio::runtime::Runtime::new().unwrap() };

    let (status, put) = gw.post("/v3/kv/put", serde_json::json!({"key": b64("/gw/a"), "value": b64("1")}), None);
    assert_eq!(status, 200, "{put}");
    assert!(put["header"]["revision"].is_string(), "int64 values are strings, as in etcd's gateway: {put}");
    let (_, got) = gw.post("/v3/kv/range", serde_json::json!({"key": b64("/gw/a")}), None);
    assert_eq!(got["kvs"][0]["value"], b64("1"), "{got}");
    assert_eq!(got["count"], "1");
    assert_eq!(got["kvs"][0]["create_revision"], put["header"]["revision"], "proto field names, as etcd writes them");
    assert!(lab.etcdctl_ok(&["get", "/gw/a"]).contains('1'), "etcdctl sees what the gateway wrote");

    let (_, txn) = gw.post(
        "/v3/kv/txn",
        serde_json::json!({
            "compare": [{"key": b64("/gw/a"), "result": "EQUAL", "target": "VALUE", "value": b64("1")}],
            "success": [{"request_put": {"key": b64("/gw/b"), "value": b64("2")}}],
        }),
        None,
    );
    assert_eq!(txn["succeeded"], true, "{txn}");

    let (_, lease) = gw.post("/v3/lease/grant", serde_json::json!({"TTL": "60"}), None);
    let id = lease["ID"].as_str().expect("a lease id, as a string").to_string();
    let (_, ttl) = gw.post("/v3/lease/timetolive", serde_json::json!({"ID": id}), None);
    assert_eq!(ttl["grantedTTL"], "60", "{ttl}");

    // A watch streams one JSON object per line: created, then each change.
    let url = format!("{}/v3/watch", gw.url);
    let watch = serde_json::json!({"create_request": {"key": b64("/gw/w"), "start_revision": "1"}}).to_string();
    lab.etcdctl_ok(&["put", "/gw/w", "watched"]);
    let lines = gw
        .runtime
        .block_on(raftty::lab::scrape::post_json_lines(&url, &gw.cert, &watch, 2, Duration::from_secs(10)))
        .expect("the watch stream");
    let created: Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(created["result"]["created"], true, "{}", lines[0]);
    let event: Value = serde_json::from_str(&lines[1]).expect("a JSON line");
    assert_eq!(event["result"]["events"][0]["kv"]["value"], b64("watched"), "{}", lines[1]);

    let (status, error) = gw.post("/v3/kv/range", serde_json::json!({"key": ""}), None);
    assert_eq!(status, 400);
    assert_eq!(error["error"], "etcdserver: key is not provided", "{error}");
    assert_eq!(error["code"], 3);

    // The token flow: with auth on, the gateway acts as the token's user, and (as etcd
    // 3.4.23) refuses a certificate that carries a CN: it takes one without, and a token.
    lab.etcdctl_ok(&["user", "add", "root:rootpw"]);
    lab.etcdctl_ok(&["auth", "enable"]);
    let (status, refused) = gw.post_raw("/v3/kv/range", serde_json::json!({"key": b64("/gw/b")}), None);
    assert_eq!(
        (status, refused.as_str()),
        (400, "CommonName of client sending a request against gateway will be ignored and not used as expected\n")
    );
    lab.raftty_ok(&["cert", "issue", "curl", "--no-common-name"]);
    let gw = Gateway { cert: raftty::pki::Pki::at(&lab.pki()).user_files("curl"), ..gw };
    let (_, auth) = gw.post("/v3/auth/authenticate", serde_json::json!({"name": "root", "password": "rootpw"}), None);
    let token = auth["token"].as_str().unwrap_or_else(|| panic!("a token: {auth}")).to_string();
    let (status, with) = gw.post("/v3/kv/range", serde_json::json!({"key": b64("/gw/b")}), Some(&token));
    assert_eq!(status, 200, "{with}");
    assert_eq!(with["kvs"][0]["value"], b64("2"));
    let (status, without) = gw.post("/v3/kv/range", serde_json::json!({"key": b64("/gw/b")}), None);
    assert_eq!((status, without["error"].as_str()), (400, Some("etcdserver: user name is empty")), "{without}");
    let (status, bad) = gw.post("/v3/kv/range", serde_json::json!({"key": b64("/gw/b")}), Some("not-a-token"));
    assert_eq!((status, bad["error"].as_str()), (401, Some("etcdserver: invalid auth token")), "{bad}");
    let (_, wrong) = gw.post("/v3/auth/authenticate", serde_json::json!({"name": "root", "password": "nope"}), None);
    assert_eq!(wrong["error"], "etcdserver: authentication failed, invalid user ID or password");
}
