//! etcd's auth with the real etcdctl against a real lab: from `user add root` to `auth enable`,
//! users and roles on prefixes, refusals with etcd's messages, the client certificate's CN as
//! the user, and the auth state through a leader kill, a restart and a snapshot restore.

mod common;

use std::io::Write;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

use common::*;

const DENIED: &str = "etcdserver: permission denied";

fn err_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Users and roles as an operator sets them up: root, a reader of /app/ and a writer of /app/.
fn set_up(lab: &TestLab) {
    lab.etcdctl_ok(&["user", "add", "root:rootpw"]);
    let enabled = lab.etcdctl_ok(&["auth", "enable"]);
    assert!(enabled.contains("Authentication Enabled"), "etcdctl creates the root role and enables: {enabled}");
    lab.etcdctl_ok(&["role", "add", "reader"]);
    lab.etcdctl_ok(&["role", "grant-permission", "reader", "--prefix=true", "read", "/app/"]);
    lab.etcdctl_ok(&["role", "add", "writer"]);
    lab.etcdctl_ok(&["role", "grant-permission", "writer", "--prefix=true", "readwrite", "/app/"]);
    lab.etcdctl_ok(&["user", "add", "alice:alicepw"]);
    lab.etcdctl_ok(&["user", "grant-role", "alice", "reader"]);
    lab.etcdctl_ok(&["user", "add", "bob:bobpw"]);
    lab.etcdctl_ok(&["user", "grant-role", "bob", "writer"]);
    lab.etcdctl_ok(&["put", "/app/config", "v1"]);
    lab.etcdctl_ok(&["put", "/secret", "s"]);
}

fn txn_as(lab: &TestLab, user: &str, script: &str) -> std::process::Output {
    let mut cmd = Command::new("etcdctl");
    for (k, v) in lab.env() {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["--command-timeout", "10s", "--user", user, "txn"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl txn");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("the script");
    child.wait_with_output().expect("etcdctl txn output")
}

#[test]
fn readers_and_writers_are_held_to_their_prefixes_with_etcds_refusals() {
    let lab = TestLab::up(3);
    set_up(&lab);
    let events = lab.record_events();

    // The reader reads its prefix, nothing else, and writes nothing.
    assert!(lab.etcdctl_ok(&["--user", "alice:alicepw", "get", "/app/config"]).contains("v1"));
    let out = lab.etcdctl(&["--user", "alice:alicepw", "get", "/secret"]);
    assert!(!out.status.success() && err_of(&out).contains(DENIED), "{}", describe(&out));
    let out = lab.etcdctl(&["--user", "alice:alicepw", "put", "/app/config", "v2"]);
    assert!(!out.status.success() && err_of(&out).contains(DENIED), "{}", describe(&out));
    let out = lab.etcdctl(&["--user", "alice:alicepw", "get", "", "--prefix"]);
    assert!(err_of(&out).contains(DENIED), "the whole keyspace is wider than /app/: {}", describe(&out));

    // The writer writes its prefix only.
    lab.etcdctl_ok(&["--user", "bob:bobpw", "put", "/app/config", "v2"]);
    let out = lab.etcdctl(&["--user", "bob:bobpw", "put", "/secret", "x"]);
    assert!(err_of(&out).contains(DENIED), "{}", describe(&out));
    let out = lab.etcdctl(&["--user", "bob:bobpw", "del", "/secret"]);
    assert!(err_of(&out).contains(DENIED), "{}", describe(&out));

    // A transaction that crosses the boundary is refused as a whole: nothing of it happens.
    let out = txn_as(&lab, "bob:bobpw", "value(\"/app/config\") = \"v2\"\n\nput /app/config v3\nput /secret x\n\n\n");
    assert!(err_of(&out).contains(DENIED), "{}", describe(&out));
    assert!(lab.etcdctl_ok(&["get", "/app/config"]).contains("v2"), "the allowed half did not happen either");
    let out = txn_as(&lab, "bob:bobpw", "value(\"/app/config\") = \"v2\"\n\nput /app/config v3\n\n\n");
    assert!(out.status.success() && stdout(&out).contains("SUCCESS"), "{}", describe(&out));

    // A watch outside the prefix is canceled with the reason.
    let out = lab.etcdctl(&["--user", "alice:alicepw", "watch", "/secret"]);
    let all = format!("{}{}", stdout(&out), err_of(&out));
    assert!(all.contains("watch was canceled") && all.contains(DENIED), "{all}");

    // A wrong password, an unknown user, and admin work for a non-root user.
    let out = lab.etcdctl(&["--user", "alice:nope", "get", "/app/config"]);
    assert!(
        err_of(&out).contains("etcdserver: authentication failed, invalid user ID or password"),
        "{}",
        describe(&out)
    );
    let out = lab.etcdctl(&["--user", "mallory:x", "get", "/app/config"]);
    assert!(err_of(&out).contains("authentication failed"), "{}", describe(&out));
    let out = lab.etcdctl(&["--user", "alice:alicepw", "user", "list"]);
    assert!(err_of(&out).contains(DENIED), "{}", describe(&out));
    let file = lab.home.path().join("s.db").display().to_string();
    let out = lab.etcdctl_on("n1", &["--user", "alice:alicepw", "snapshot", "save", &file]);
    assert!(err_of(&out).contains(DENIED), "a snapshot is for root: {}", describe(&out));

    // Each refusal is published by the member that refused it, with who, what and why, so
    // the app's Events tab shows them.
    let refusal = |user: &str, needed: &str, reason: &str| {
        events.wait_for_event(&format!("a request_refused event: {user} needed {needed}"), |e| {
            e["kind"] == "request_refused" && e["user"] == user && e["needed"] == needed && e["reason"] == reason
        })
    };
    refusal("alice", "read /secret", DENIED);
    refusal("alice", "write /app/config", DENIED);
    refusal("bob", "write /secret", DENIED);
    refusal("alice", "the root role", DENIED);
    refusal("alice", "a matching password", "etcdserver: authentication failed, invalid user ID or password");
    refusal("mallory", "a user with a password", "etcdserver: authentication failed, invalid user ID or password");

    // etcd's errors for auth management.
    let out = lab.etcdctl(&["user", "grant-role", "alice", "nosuchrole"]);
    assert!(err_of(&out).contains("etcdserver: role name not found"), "{}", describe(&out));
    let out = lab.etcdctl(&["user", "add", "alice:again"]);
    assert!(err_of(&out).contains("etcdserver: user name already exists"), "{}", describe(&out));
    let out = lab.etcdctl(&["user", "revoke-role", "alice", "writer"]);
    assert!(err_of(&out).contains("etcdserver: role is not granted to the user"), "{}", describe(&out));

    // auth disable opens everything again.
    assert!(lab.etcdctl_ok(&["auth", "disable"]).contains("Authentication Disabled"));
    assert!(lab.etcdctl_ok(&["get", "/secret"]).contains('s'));
    let out = lab.etcdctl(&["--user", "alice:alicepw", "get", "/secret"]);
    assert!(err_of(&out).contains("etcdserver: authentication is not enabled"), "{}", describe(&out));
}

#[test]
fn a_client_certificate_is_its_cn_and_auth_outlives_kills_restarts_and_restores() {
    let lab = TestLab::up(3);
    set_up(&lab);
    // carol has no password: her certificate is her identity.
    lab.etcdctl_ok(&["user", "add", "carol", "--no-password"]);
    lab.etcdctl_ok(&["user", "grant-role", "carol", "reader"]);
    let issued = lab.raftty_ok(&["cert", "issue", "carol"]);
    assert!(issued.contains("users/carol.crt") && issued.contains("users/carol.key"), "{issued}");
    let as_carol: Vec<(String, String)> = lab
        .raftty_ok(&["env", "--user", "carol"])
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    assert!(as_carol.iter().any(|(k, v)| k == "ETCDCTL_CERT" && v.ends_with("users/carol.crt")), "{as_carol:?}");
    let listed = lab.raftty_ok(&["cert", "list"]);
    assert!(
        listed.lines().any(|l| l.split_whitespace().take(3).eq(["users/carol.crt", "carol", "client"])),
        "{listed}"
    );
    assert!(stdout(&etcdctl_with_env(&as_carol, &["get", "/app/config"])).contains("v1"), "carol reads /app/");
    let out = etcdctl_with_env(&as_carol, &["put", "/app/config", "x"]);
    assert!(err_of(&out).contains(DENIED), "carol may not write: {}", describe(&out));
    let out = lab.etcdctl(&["--user", "carol:guess", "get", "/app/config"]);
    assert!(err_of(&out).contains("authentication failed"), "no password, so no token: {}", describe(&out));

    // An expired certificate does not get in at all.
    lab.raftty_ok(&["cert", "issue", "dave", "--expired"]);
    let as_dave: Vec<(String, String)> =
        as_carol.iter().map(|(k, v)| (k.clone(), v.replace("users/carol.", "users/dave."))).collect();
    let out = etcdctl_with_env(&as_dave, &["--command-timeout", "3s", "get", "/app/config"]);
    assert!(!out.status.success(), "an expired certificate is refused: {}", describe(&out));
    let explained = lab.raftty_ok(&["cert", "inspect", &lab.pki().join("users/dave.crt").display().to_string()]);
    assert!(explained.contains("EXPIRED") && explained.contains("this lab's CA"), "{explained}");

    // The auth state is replicated: it holds through a leader kill and a restart.
    let leader = lab.leader();
    kill9(&lab, &leader);
    lab.wait_new_leader(&leader);
    let out = lab.etcdctl(&["--user", "alice:alicepw", "get", "/secret"]);
    assert!(err_of(&out).contains(DENIED), "{}", describe(&out));
    lab.raftty_ok(&["start", &leader]);
    wait_for(Duration::from_secs(20), &format!("{leader} to refuse alice /secret after its restart"), || {
        err_of(&lab.etcdctl_on_quick(&leader, &["--user", "alice:alicepw", "get", "/secret"])).contains(DENIED)
    });

    // A snapshot carries users and roles into a restored lab.
    let file = lab.home.path().join("with-auth.db");
    let saved = lab.etcdctl_on("n1", &["snapshot", "save", &file.display().to_string()]);
    assert!(saved.status.success(), "root saves a snapshot: {}", describe(&saved));
    // Stopped however the test ends, so a failing assertion leaves no member running.
    struct StopCopy<'a>(&'a TestLab);
    impl Drop for StopCopy<'_> {
        fn drop(&mut self) {
            let _ = self.0.raftty(&["down", "--lab", "copy"]);
        }
    }
    let _stop_copy = StopCopy(&lab);
    let restored = lab.raftty(&["restore", &file.display().to_string(), "--lab", "copy", "--nodes", "1"]);
    assert!(restored.status.success(), "{}", describe(&restored));
    let copy_env: Vec<(String, String)> = lab
        .raftty_ok(&["env", "--lab", "copy"])
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    let out = etcdctl_with_env(&copy_env, &["--user", "alice:alicepw", "get", "/secret"]);
    assert!(err_of(&out).contains(DENIED), "the restored lab knows alice and her role: {}", describe(&out));
    let out = etcdctl_with_env(&copy_env, &["--user", "bob:bobpw", "get", "/app/config"]);
    assert!(stdout(&out).contains("v1"), "{}", describe(&out));
}

/// Every way a certificate can be wrong, each refused at the handshake and named, with the
/// CN it carried, in the member's log and on its event stream (which the app's Events tab
/// shows): none at all, one from a foreign CA, an expired one, one not for client use.
#[test]
fn every_refused_certificate_is_named_in_the_members_log_and_events() {
    let lab = TestLab::up(1);
    let events = lab.record_events();
    lab.raftty_ok(&["cert", "issue", "old", "--expired"]);
    let issued = lab.raftty_ok(&["cert", "issue", "web", "--server-only"]);
    assert!(issued.contains("not for client authentication"), "{issued}");
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = raftty::pki::Pki::create(&foreign_dir.path().join("pki")).unwrap();
    let mallory = foreign.issue("mallory", raftty::pki::CertRole::User).unwrap();

    let with_cert = |cert: Option<(String, String)>| {
        let mut env: Vec<(String, String)> =
            lab.env().into_iter().filter(|(k, _)| k != "ETCDCTL_CERT" && k != "ETCDCTL_KEY").collect();
        if let Some((crt, key)) = cert {
            env.push(("ETCDCTL_CERT".into(), crt));
            env.push(("ETCDCTL_KEY".into(), key));
        }
        etcdctl_with_env(&env, &["--dial-timeout", "1s", "--command-timeout", "2s", "get", "k"])
    };
    let user = |name: &str| {
        let dir = lab.pki().join("users");
        Some((path_str(&dir.join(format!("{name}.crt"))), path_str(&dir.join(format!("{name}.key")))))
    };
    let cases = [
        (None, None, "no client certificate"),
        (
            Some((path_str(&mallory.cert), path_str(&mallory.key))),
            Some("mallory"),
            "certificate signed by a foreign CA",
        ),
        (user("old"), Some("old"), "certificate expired"),
        (user("web"), Some("web"), "certificate not for client authentication (wrong key usage)"),
    ];
    for (cert, cn, reason) in cases {
        let out = with_cert(cert);
        assert!(!out.status.success(), "{reason}: etcdctl must not get in: {}", describe(&out));
        let event = events.wait_for_event(&format!("n1 to publish client_refused: {reason}"), |e| {
            e["kind"] == "client_refused" && e["reason"] == reason && e["cn"].as_str() == cn
        });
        assert_eq!((event["member"].as_str(), event["port"].as_str()), (Some("n1"), Some("client")), "{event}");
    }
    let log = std::fs::read_to_string(lab.dir().join("logs/n1.log")).unwrap();
    for expected in [
        "client port refused a client from 127.0.0.1:",
        "(CN old): certificate expired",
        "(CN mallory): certificate signed by a foreign CA",
    ] {
        assert!(log.contains(expected), "n1's log says {expected:?}:\n{log}");
    }
    // The lab's own certificate still gets in.
    assert_eq!(lab.etcdctl_ok(&["put", "k", "v"]).trim(), "OK");
}
