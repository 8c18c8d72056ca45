//! The headless lab commands: up, status, env, down, as a script would use them.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

#[test]
fn up_status_env_down() {
    let lab = TestLab::up(3);

    let status = lab.status();
    assert_eq!(status["lab"], "test");
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let leader = lab.leader();
    for n in nodes {
        for field in
            ["name", "pid", "state", "role", "term", "raft_index", "applied_index", "leader", "client_url", "peer_url"]
        {
            assert!(n.get(field).is_some(), "status --json lacks {field}: {n}");
        }
        assert_eq!(n["state"], "running");
        let role = n["role"].as_str().unwrap();
        assert!(["leader", "follower"].contains(&role), "{n}");
        assert_eq!(role == "leader", n["name"] == leader.as_str(), "{n}");
        assert!(n["pid"].as_i64().unwrap() > 0);
        assert!(n["client_url"].as_str().unwrap().starts_with("https://127.0.0.1:"));
    }
    let table = lab.raftty_ok(&["status"]);
    assert!(table.contains("NAME") && table.contains("leader") && table.lines().count() >= 4, "{table}");

    // Running up again on a running lab changes nothing.
    let pids: Vec<i64> = nodes.iter().map(|n| n["pid"].as_i64().unwrap()).collect();
    let again = lab.raftty_ok(&["up"]);
    assert!(again.contains("already running"), "{again}");
    let pids_after: Vec<i64> =
        lab.status()["nodes"].as_array().unwrap().iter().map(|n| n["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids, pids_after);

    let env = lab.env();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["ETCDCTL_API", "ETCDCTL_ENDPOINTS", "ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY"]);
    assert_eq!(env[1].1.split(',').count(), 3);
    let key_mode = std::fs::metadata(&env[4].1).unwrap().permissions().mode() & 0o777;
    assert_eq!(key_mode, 0o600, "the client key must be private");
    assert_eq!(lab.etcdctl_ok(&["put", "hello", "world"]).trim(), "OK");

    // Stop the lab; `up` brings every member back with its data.
    let follower = nodes.iter().find(|n| n["name"] != leader.as_str()).unwrap()["name"].as_str().unwrap().to_string();
    let out = lab.raftty_ok(&["down"]);
    assert!(out.contains("stopped"), "{out}");
    let status = lab.status();
    assert!(status["nodes"].as_array().unwrap().iter().all(|n| n["state"] == "exited"), "{status}");
    let out = lab.raftty_ok(&["up"]);
    assert!(out.contains("started"), "{out}");
    assert_eq!(lab.etcdctl_on(&follower, &["get", "--print-value-only", "hello"]).stdout, b"world\n");

    let out = lab.raftty_ok(&["down", "--purge"]);
    assert!(out.contains("deleted"), "{out}");
    assert!(!lab.dir().exists());
    let err = lab.raftty(&["status"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("no lab named"), "{}", describe(&err));
}

#[test]
fn a_single_member_lab_works() {
    let lab = TestLab::up(1);
    assert_eq!(lab.leader(), "n1");
    assert_eq!(lab.etcdctl_ok(&["put", "solo", "yes"]).trim(), "OK");
    assert_eq!(lab.etcdctl_ok(&["get", "--print-value-only", "solo"]), "yes\n");
}

#[test]
fn an_existing_lab_cannot_silently_change_size() {
    let lab = TestLab::up(1);
    let out = lab.raftty(&["up", "--nodes", "3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has 1 members"), "{}", describe(&out));
}

/// A pid file outlives a member killed with SIGKILL, and pids are handed out again: the
/// lab must never signal whatever process holds that pid now.
#[test]
fn a_stale_pid_file_never_gets_another_process_signalled() {
    let lab = TestLab::up(1);
    kill9(&lab, "n1");
    let mut bystander = std::process::Command::new("sleep").arg("600").spawn().expect("starting sleep");
    std::fs::write(lab.dir().join("run").join("n1.pid"), bystander.id().to_string()).unwrap();

    assert_eq!(lab.node("n1")["state"], "exited", "a pid that is not n1's is not n1");
    for command in [&["kill", "n1"][..], &["pause", "n1"], &["stop", "n1"]] {
        let out = lab.raftty(command);
        assert!(!out.status.success(), "raftty {command:?} on a dead member must fail");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not running"), "{}", describe(&out));
    }
    lab.raftty_ok(&["down"]);
    lab.raftty_ok(&["up"]);
    assert_eq!(lab.etcdctl_ok(&["put", "after", "restart"]).trim(), "OK");
    assert!(bystander.try_wait().unwrap().is_none(), "the process that got n1's old pid was signalled");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

/// A stop that reaches a member the moment it is started, before it could have set up
/// anything, still ends it cleanly and in its log: never a silent death mid-start.
#[test]
fn a_member_asked_to_stop_as_it_starts_stops_cleanly_and_says_so() {
    use nix::sys::signal::Signal;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let lab = TestLab::up(1);
    lab.raftty_ok(&["stop", "n1"]);
    let pid_file = lab.dir().join("run").join("n1.pid");
    let mut start = std::process::Command::new(RAFTTY)
        .args(["--lab", &lab.name, "start", "n1"])
        .env("RAFTTY_HOME", lab.home.path())
        .env_remove("RAFTTY_LAB")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running raftty start");
    // Signal as soon as the pid is known, as the lab itself could: no time for a handler.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for n1's pid file");
        std::thread::yield_now();
    };
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("SIGTERM");
    start.wait().expect("waiting for raftty start");

    wait_for(Duration::from_secs(20), "n1 to exit", || lab.node("n1")["state"] == "exited");
    let log = log_since_start(&lab, "n1");
    assert!(log.contains("member n1 stopping"), "n1 did not take up the stop:\n{log}");
    assert!(!log.contains("killed by signal"), "n1 died of the signal:\n{log}");
    lab.raftty_ok(&["start", "n1"]);
    assert_eq!(lab.etcdctl_ok(&["put", "after", "restart"]).trim(), "OK");
}

/// The new leader streams appends into every follower; stopping the lab must not wait on
/// those streams (it once took the lab's whole grace, 5 s, per follower, and ended in SIGKILL).
#[test]
fn down_after_a_failover_stops_every_member_cleanly() {
    let lab = TestLab::up(3);
    let old = lab.leader();
    lab.raftty_ok(&["kill", &old]);
    let new = lab.wait_new_leader(&old);
    assert_eq!(lab.etcdctl_ok(&["put", "after", "failover"]).trim(), "OK");
    lab.raftty_ok(&["down"]);
    for member in ["n1", "n2", "n3"].into_iter().filter(|m| *m != old) {
        let this_run = log_since_start(&lab, member);
        let clean = format!("member {member} stopped");
        assert!(
            this_run.lines().any(|l| l.trim_end().ends_with(&clean)),
            "{member} (the new leader is {new}) did not stop cleanly:\n{this_run}"
        );
    }
}
