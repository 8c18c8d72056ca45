//! The real etcdctl against a real 3-member lab over mTLS: the key-value commands and etcd's
//! errors, exactly as an etcd user would see them.

mod common;

use std::io::Write;
use std::process::Command;
use std::process::Stdio;

use common::*;
use serde_json::Value;

fn get_json(lab: &TestLab, args: &[&str]) -> Value {
    let mut full = vec!["get", "-w", "json"];
    full.extend_from_slice(args);
    serde_json::from_str(&lab.etcdctl_ok(&full)).expect("etcdctl -w json prints JSON")
}

/// Keys of a `get -w json` answer, decoded from etcd's base64.
fn keys(v: &Value) -> Vec<String> {
    use base64::Engine;
    let decode = |k: &Value| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(k.as_str().expect("base64 key")).expect("base64");
        String::from_utf8(bytes).expect("utf-8 key")
    };
    v["kvs"].as_array().map(|kvs| kvs.iter().map(|kv| decode(&kv["key"])).collect()).unwrap_or_default()
}

/// Runs etcdctl with `input` on stdin (txn scripts, large values).
fn etcdctl_stdin(lab: &TestLab, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut cmd = Command::new("etcdctl");
    for (k, v) in lab.env() {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["--command-timeout", "10s"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn put_get_prefix_range_limit_keys_only_and_sort() {
    let lab = TestLab::up(3);
    assert_eq!(lab.etcdctl_ok(&["put", "/registry/pods/default/nginx", "v1"]).trim(), "OK");
    lab.etcdctl_ok(&["put", "/registry/pods/default/redis", "v2"]);
    lab.etcdctl_ok(&["put", "/registry/pods/kube-system/dns", "v3"]);
    lab.etcdctl_ok(&["put", "/registry/services/default/web", "v4"]);

    assert_eq!(lab.etcdctl_ok(&["get", "/registry/pods/default/nginx"]), "/registry/pods/default/nginx\nv1\n");
    assert_eq!(lab.etcdctl_ok(&["get", "--print-value-only", "/registry/pods/default/redis"]), "v2\n");
    assert_eq!(lab.etcdctl_ok(&["get", "/missing"]), "");

    let pods = get_json(&lab, &["--prefix", "/registry/pods/"]);
    assert_eq!(
        keys(&pods),
        ["/registry/pods/default/nginx", "/registry/pods/default/redis", "/registry/pods/kube-system/dns"]
    );
    assert_eq!(pods["count"], 3);

    // A range [from, to): etcdctl get FROM TO.
    let range = get_json(&lab, &["/registry/pods/default/redis", "/registry/services/"]);
    assert_eq!(keys(&range), ["/registry/pods/default/redis", "/registry/pods/kube-system/dns"]);

    // --from-key: every key >= the given one (range_end "\0").
    let from = get_json(&lab, &["--from-key", "/registry/pods/kube-system/dns"]);
    assert_eq!(keys(&from), ["/registry/pods/kube-system/dns", "/registry/services/default/web"]);

    let limited = get_json(&lab, &["--prefix", "/registry/", "--limit", "2"]);
    assert_eq!(keys(&limited).len(), 2);
    assert_eq!(limited["more"], true, "more keys than the limit: {limited}");
    assert_eq!(limited["count"], 4, "count ignores the limit: {limited}");

    assert_eq!(
        lab.etcdctl_ok(&["get", "--prefix", "/registry/pods/default/", "--keys-only"]),
        "/registry/pods/default/nginx\n\n/registry/pods/default/redis\n\n"
    );

    let by_key_desc = get_json(&lab, &["--prefix", "/registry/", "--sort-by", "KEY", "--order", "DESCEND"]);
    assert_eq!(
        keys(&by_key_desc),
        [
            "/registry/services/default/web",
            "/registry/pods/kube-system/dns",
            "/registry/pods/default/redis",
            "/registry/pods/default/nginx"
        ]
    );
    lab.etcdctl_ok(&["put", "/registry/pods/default/nginx", "v1-updated"]);
    let by_mod =
        get_json(&lab, &["--prefix", "/registry/", "--sort-by", "MODIFY", "--order", "DESCEND", "--limit", "1"]);
    assert_eq!(keys(&by_mod), ["/registry/pods/default/nginx"], "the last modified key first");
    let by_value = get_json(&lab, &["--prefix", "/registry/", "--sort-by", "VALUE", "--order", "ASCEND"]);
    assert_eq!(keys(&by_value)[0], "/registry/pods/default/nginx", "v1-updated sorts first: {by_value}");
}

#[test]
fn revisions_history_delete_and_compaction() {
    let lab = TestLab::up(3);
    let first = get_json(&lab, &["nothing"])["header"]["revision"].as_i64().unwrap();
    lab.etcdctl_ok(&["put", "k", "one"]);
    lab.etcdctl_ok(&["put", "k", "two"]);
    lab.etcdctl_ok(&["put", "other", "x"]);
    let now = get_json(&lab, &["k"]);
    let kv = &now["kvs"][0];
    assert_eq!(kv["version"], 2, "two puts: {now}");
    assert_eq!(kv["create_revision"].as_i64().unwrap(), first + 1);
    assert_eq!(kv["mod_revision"].as_i64().unwrap(), first + 2);
    assert_eq!(now["header"]["revision"].as_i64().unwrap(), first + 3);

    let rev1 = (first + 1).to_string();
    assert_eq!(lab.etcdctl_ok(&["get", "--rev", &rev1, "--print-value-only", "k"]), "one\n");

    assert_eq!(lab.etcdctl_ok(&["del", "k"]).trim(), "1");
    assert_eq!(lab.etcdctl_ok(&["get", "k"]), "");
    assert_eq!(lab.etcdctl_ok(&["del", "k"]).trim(), "0", "deleting a missing key deletes nothing");
    let rev2 = (first + 2).to_string();
    assert_eq!(
        lab.etcdctl_ok(&["get", "--rev", &rev2, "--print-value-only", "k"]),
        "two\n",
        "history keeps deleted keys"
    );

    lab.etcdctl_ok(&["put", "k", "three"]);
    let recreated = get_json(&lab, &["k"]);
    assert_eq!(recreated["kvs"][0]["version"], 1, "a delete resets the version: {recreated}");

    lab.etcdctl_ok(&["put", "p/a", "1"]);
    lab.etcdctl_ok(&["put", "p/b", "2"]);
    assert_eq!(lab.etcdctl_ok(&["del", "--prefix", "p/"]).trim(), "2");
    let prev = lab.etcdctl_ok(&["del", "--prev-kv", "k"]);
    assert_eq!(prev, "1\nk\nthree\n");

    let compact_at = (first + 3).to_string();
    assert_eq!(lab.etcdctl_ok(&["compaction", &compact_at]).trim(), format!("compacted revision {compact_at}"));
    let err = lab.etcdctl_err(&["get", "--rev", &rev1, "k"]);
    assert!(err.contains("etcdserver: mvcc: required revision has been compacted"), "{err}");
    let err = lab.etcdctl_err(&["compaction", &rev1]);
    assert!(err.contains("etcdserver: mvcc: required revision has been compacted"), "{err}");
    assert_eq!(lab.etcdctl_ok(&["get", "--rev", &compact_at, "--print-value-only", "other"]), "x\n");
    let err = lab.etcdctl_err(&["get", "--rev", "1000000", "k"]);
    assert!(err.contains("etcdserver: mvcc: required revision is a future revision"), "{err}");
}

#[test]
fn txn_compare_and_swap() {
    let lab = TestLab::up(3);
    // Kubernetes' create: succeed only if the key does not exist (mod revision 0).
    let create = "mod(\"/registry/cm/a\") = \"0\"\n\nput /registry/cm/a created\n\nget /registry/cm/a\n\n";
    let out = etcdctl_stdin(&lab, &["txn"], create.as_bytes());
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "SUCCESS\n\nOK\n");
    let out = etcdctl_stdin(&lab, &["txn"], create.as_bytes());
    assert_eq!(stdout(&out), "FAILURE\n\n/registry/cm/a\ncreated\n", "{}", describe(&out));

    let value_cmp = "value(\"/registry/cm/a\") = \"created\"\n\nput /registry/cm/a updated\n\n\n";
    let out = etcdctl_stdin(&lab, &["txn"], value_cmp.as_bytes());
    assert_eq!(stdout(&out), "SUCCESS\n\nOK\n", "{}", describe(&out));
    let version_cmp = "version(\"/registry/cm/a\") > \"5\"\n\n\nget /registry/cm/a\n\n";
    let out = etcdctl_stdin(&lab, &["txn"], version_cmp.as_bytes());
    assert_eq!(stdout(&out), "FAILURE\n\n/registry/cm/a\nupdated\n", "{}", describe(&out));
    let create_cmp = "create(\"/registry/cm/a\") != \"0\"\n\ndel /registry/cm/a\n\n\n";
    let out = etcdctl_stdin(&lab, &["txn"], create_cmp.as_bytes());
    assert_eq!(stdout(&out), "SUCCESS\n\n1\n", "{}", describe(&out));
}

#[test]
fn etcd_errors_for_bad_requests() {
    let lab = TestLab::up(3);
    let err = lab.etcdctl_err(&["put", "", "v"]);
    assert!(err.contains("etcdserver: key is not provided"), "{err}");

    let big = vec![b'x'; 1024 * 1024 + 600 * 1024];
    let out = etcdctl_stdin(&lab, &["put", "big"], &big);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("etcdserver: request is too large"), "{err}");

    let mut many = String::from("\n");
    for i in 0..129 {
        many.push_str(&format!("put k{i} v\n"));
    }
    many.push_str("\n\n");
    let out = etcdctl_stdin(&lab, &["txn"], many.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("etcdserver: too many operations in txn request"), "{}", describe(&out));

    let dup = "\nput same 1\nput same 2\n\n\n";
    let out = etcdctl_stdin(&lab, &["txn"], dup.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("etcdserver: duplicate key given in txn request"), "{}", describe(&out));

    let err = lab.etcdctl_err(&["put", "--lease", "1234abcd", "leased", "v"]);
    assert!(err.contains("etcdserver: requested lease not found"), "{err}");

    // Nothing of the refused requests was written.
    assert_eq!(lab.etcdctl_ok(&["get", "--prefix", ""]), "");
}
