//! The peer for comparison: a real 3-member etcd on this machine, with certificates from the
//! benchmark lab's CA so the same client certificate and the same load generator drive both.

use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;

use crate::client::EtcdClient;
use crate::lab::ports;
use crate::pki::CertFiles;
use crate::pki::CertRole;
use crate::pki::Pki;
use crate::proto::etcdserverpb::RangeRequest;
use crate::proto::etcdserverpb::StatusRequest;

/// Whether an `etcd` executable is on PATH, and which version.
pub fn etcd_version() -> Option<String> {
    let out = Command::new("etcd").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("etcd Version: ").map(str::to_string))
}

pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
    pub dir: PathBuf,
}

pub struct EtcdMember {
    pub name: String,
    pub client_url: String,
    pub process: Child,
    /// How it was started, to start it again after a kill.
    args: Vec<String>,
    log: PathBuf,
}

impl EtcdMember {
    fn spawn(args: &[String], log: &Path) -> Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        Command::new("etcd")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting etcd")
    }

    /// SIGKILL, then wait for the process to be gone.
    pub fn kill(&mut self) -> Result<()> {
        self.process.kill()?;
        self.process.wait()?;
        Ok(())
    }

    /// Starts the member again with its data (etcd ignores the initial-cluster flags then).
    pub fn restart(&mut self) -> Result<()> {
        self.process = EtcdMember::spawn(&self.args, &self.log)?;
        Ok(())
    }
}

impl EtcdCluster {
    /// Starts `size` etcd members with TLS on client and peer ports, using etcd's default
    /// timing (100 ms heartbeat, 1 s election timeout).
    pub fn start(dir: &Path, pki: &Pki, size: usize) -> Result<EtcdCluster> {
        std::fs::create_dir_all(dir)?;
        let ports = ports::pick_free_ports(size * 2, &Default::default())?;
        let names: Vec<String> = (1..=size).map(|i| format!("etcd{i}")).collect();
        let initial: Vec<String> =
            names.iter().enumerate().map(|(i, n)| format!("{n}=https://127.0.0.1:{}", ports[2 * i + 1])).collect();
        let mut members = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let cert = pki.issue(name, CertRole::Member)?;
            let client_url = format!("https://127.0.0.1:{}", ports[2 * i]);
            let peer_url = format!("https://127.0.0.1:{}", ports[2 * i + 1]);
            let log = dir.join(format!("{name}.log"));
            let data_dir = dir.join(name).display().to_string();
            let mut args: Vec<String> = [
                "--name",
                name,
                "--data-dir",
                &data_dir,
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &initial.join(","),
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "raftty-bench",
                "--client-cert-auth",
                "--peer-client-cert-auth",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(cert_args("", &cert));
            args.extend(cert_args("peer-", &cert));
            let process = EtcdMember::spawn(&args, &log)?;
            members.push(EtcdMember { name: name.clone(), client_url, process, args, log });
        }
        Ok(EtcdCluster { members, dir: dir.to_path_buf() })
    }

    /// Waits until every member names the same leader and a linearizable read succeeds;
    /// returns the leader's client URL.
    pub async fn wait_ready(&self, cert: &CertFiles, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            let mut ids = Vec::new();
            for m in &self.members {
                let status = async {
                    let mut c = EtcdClient::connect(&m.client_url, cert, Duration::from_secs(1)).await?;
                    let s = c.maintenance.status(StatusRequest {}).await?.into_inner();
                    c.kv.range(RangeRequest { key: "health".into(), ..Default::default() }).await?;
                    anyhow::Ok(s)
                };
                if let Ok(s) = status.await {
                    leaders.push(s.leader);
                    ids.push((s.header.map(|h| h.member_id).unwrap_or(0), m.client_url.clone()));
                }
            }
            if leaders.len() == self.members.len()
                && leaders.iter().all(|l| *l == leaders[0] && *l != 0)
                && let Some((_, url)) = ids.iter().find(|(id, _)| *id == leaders[0])
            {
                return Ok(url.clone());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "etcd did not become ready within {timeout:?}; see the logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.process.id()).collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.process.kill();
            let _ = m.process.wait();
        }
    }
}

fn cert_args(prefix: &str, cert: &CertFiles) -> Vec<String> {
    vec![
        format!("--{prefix}trusted-ca-file={}", cert.ca.display()),
        format!("--{prefix}cert-file={}", cert.cert.display()),
        format!("--{prefix}key-file={}", cert.key.display()),
    ]
}
