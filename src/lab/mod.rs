//! A lab: one local cluster, kept in a folder `<home>/labs/<name>/`.
//!
//! ```text
//! lab.json          members, ports, tempo (config.rs)
//! pki/              the lab's CA, member certificates, root and admin client certificates
//! members/<name>/   each member's data: raft-log.redb and its raft-log.journal, state.redb, snapshots/
//! run/<name>.pid    pids of running members
//! logs/<name>.log   what each member printed
//! faults.json       the network faults and step mode in force (faults.rs)
//! timeline/         what happened, for `raftty replay` (recording.rs)
//! ```
//!
//! `<home>` is `$RAFTTY_HOME` when set, else the platform's data directory.

pub mod certs;
pub mod check;
pub mod config;
pub mod control;
pub mod faults;
pub mod membership;
pub mod ports;
pub mod process;
pub mod recording;
pub mod recover;
pub mod restore;
pub mod scrape;
pub mod status;
pub mod step;
pub mod supervisor;
pub mod timeline;

use std::collections::HashMap;
use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use anyhow::Result;
use rand::Rng;

pub use config::LabConfig;
pub use config::MemberConfig;
pub use config::SnapshotSettings;
pub use config::Tempo;

use crate::pki::CertFiles;
use crate::pki::CertRole;
use crate::pki::Pki;

pub const DEFAULT_LAB: &str = "default";
const PORTS_PER_MEMBER: usize = 3;

/// The folder that holds every lab.
pub fn home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("RAFTTY_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let dirs = directories::ProjectDirs::from("", "", "raftty")
        .context("cannot tell where to keep labs: no home directory; set RAFTTY_HOME")?;
    Ok(dirs.data_dir().to_path_buf())
}

pub struct Lab {
    pub dir: PathBuf,
    pub config: LabConfig,
    /// The folder of labs whose recorded ports new members avoid (normally this lab's own).
    port_registry: PathBuf,
    /// Listeners on the ports of members this process created and has not started yet:
    /// handed to each member when it starts, so no other program can take its ports first.
    reserved: Mutex<HashMap<String, Vec<TcpListener>>>,
    /// Members this process started, while it runs: how each one ended, should it end.
    children: Mutex<HashMap<String, std::process::Child>>,
}

impl Lab {
    pub fn dir_for(home: &Path, name: &str) -> PathBuf {
        home.join("labs").join(name)
    }

    pub fn exists(home: &Path, name: &str) -> bool {
        Lab::dir_for(home, name).join(config::CONFIG_FILE).exists()
    }

    pub fn open(home: &Path, name: &str) -> Result<Lab> {
        let dir = Lab::dir_for(home, name);
        anyhow::ensure!(
            dir.join(config::CONFIG_FILE).exists(),
            "there is no lab named {name:?} in {} (start one with `raftty up`)",
            home.display()
        );
        Lab::open_dir(&dir)
    }

    pub fn open_dir(dir: &Path) -> Result<Lab> {
        Ok(Lab {
            dir: dir.to_path_buf(),
            config: LabConfig::load(dir)?,
            port_registry: dir.parent().unwrap_or(dir).to_path_buf(),
            reserved: Mutex::default(),
            children: Mutex::default(),
        })
    }

    /// Creates a new lab of `nodes` members: folder, certificates, ports, config.
    pub fn create(home: &Path, name: &str, nodes: usize, tempo: Tempo, snapshots: SnapshotSettings) -> Result<Lab> {
        Lab::create_avoiding(home, name, nodes, tempo, snapshots, &home.join("labs"))
    }

    /// Like [`Lab::create`], avoiding the ports recorded by the labs in `labs_dir` too: for
    /// a lab built elsewhere (a restore's staging folder) that will move there.
    pub fn create_avoiding(
        home: &Path,
        name: &str,
        nodes: usize,
        tempo: Tempo,
        snapshots: SnapshotSettings,
        labs_dir: &Path,
    ) -> Result<Lab> {
        anyhow::ensure!(nodes >= 1, "a cluster needs at least one member");
        anyhow::ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "a lab name may hold only letters, digits, '-' and '_' (got {name:?})"
        );
        let dir = Lab::dir_for(home, name);
        anyhow::ensure!(!dir.join(config::CONFIG_FILE).exists(), "lab {name:?} already exists in {}", dir.display());
        crate::pki::create_private_dir(&dir)?;
        Pki::create(&dir.join("pki"))?;
        let mut lab = Lab {
            dir,
            config: LabConfig {
                name: name.to_string(),
                cluster_id: random_id(),
                tempo,
                members: Vec::new(),
                bootstrapped: false,
                snapshots,
                quota_backend_bytes: 0,
            },
            port_registry: labs_dir.to_path_buf(),
            reserved: Mutex::default(),
            children: Mutex::default(),
        };
        for _ in 0..nodes {
            lab.new_member(true)?;
        }
        lab.config.save(&lab.dir)?;
        Ok(lab)
    }

    /// Adds a member to the config (not yet to the cluster): next free name, fresh id, ports
    /// and certificate. The caller saves the config.
    pub fn new_member(&mut self, initial: bool) -> Result<MemberConfig> {
        let number = self.config.members.len() + 1;
        let name = format!("n{number}");
        let mut taken = ports_in_use(&self.port_registry);
        taken.extend(ports_in_use(self.dir.parent().unwrap_or(&self.dir)));
        for m in &self.config.members {
            taken.extend([m.client_port, m.peer_port, m.metrics_port]);
        }
        let listeners = ports::reserve_free_ports(PORTS_PER_MEMBER, &taken)?;
        let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<_, _>>()?;
        let used_ids: HashSet<u64> = self.config.members.iter().map(|m| m.id).collect();
        let id = loop {
            let id = random_id();
            if !used_ids.contains(&id) {
                break id;
            }
        };
        self.pki()?.issue(&name, CertRole::Member)?;
        let member = MemberConfig {
            name,
            id,
            client_port: ports[0],
            peer_port: ports[1],
            metrics_port: ports[2],
            initial,
            removed: false,
        };
        self.config.members.push(member.clone());
        self.reserved.lock().unwrap_or_else(|e| e.into_inner()).insert(member.name.clone(), listeners);
        Ok(member)
    }

    pub fn reload(&mut self) -> Result<()> {
        self.config = LabConfig::load(&self.dir)?;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn pki(&self) -> Result<Pki> {
        Pki::open(&self.pki_dir())
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    pub fn member_data_dir(&self, member: &str) -> PathBuf {
        self.dir.join("members").join(member)
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The client certificate for people and scripts (etcd's `root`).
    pub fn root_cert(&self) -> CertFiles {
        Pki::at(&self.pki_dir()).files(crate::pki::ROOT_NAME)
    }

    /// The certificate of the lab supervisor, for the members' admin surface.
    pub fn admin_cert(&self) -> CertFiles {
        Pki::at(&self.pki_dir()).files(crate::pki::ADMIN_NAME)
    }

    pub fn member_cert(&self, member: &str) -> CertFiles {
        Pki::at(&self.pki_dir()).files(member)
    }

    /// Client URLs of the members that are part of the cluster.
    pub fn endpoints(&self) -> Vec<String> {
        self.config.active_members().map(MemberConfig::client_url).collect()
    }
}

/// etcd's ids are random 64-bit numbers; zero means "none" in its API.
fn random_id() -> u64 {
    rand::rng().random_range(1..=u64::MAX)
}

/// Ports recorded by every lab under `labs_dir`, running or not.
fn ports_in_use(labs_dir: &Path) -> HashSet<u16> {
    let mut ports = HashSet::new();
    let Ok(entries) = std::fs::read_dir(labs_dir) else {
        return ports;
    };
    for entry in entries.flatten() {
        if let Ok(config) = LabConfig::load(&entry.path()) {
            for m in config.members {
                ports.extend([m.client_port, m.peer_port, m.metrics_port]);
            }
        }
    }
    ports
}

impl Lab {
    /// The listeners `member` will serve on, in the order client, peer, metrics: the ones
    /// reserved when it was created, or its recorded ports bound now.
    pub fn take_listeners(&self, member: &str) -> Result<Vec<TcpListener>> {
        if let Some(held) = self.reserved.lock().unwrap_or_else(|e| e.into_inner()).remove(member) {
            return Ok(held);
        }
        let m = self.config.member(member)?;
        [("client", m.client_port), ("peer", m.peer_port), ("metrics", m.metrics_port)]
            .into_iter()
            .map(|(what, port)| {
                TcpListener::bind(("127.0.0.1", port)).with_context(|| {
                    format!("{member} cannot listen on its {what} port 127.0.0.1:{port}; is another program using it?")
                })
            })
            .collect()
    }
}
