//! The app's I/O layer: everything that waits on the cluster runs here, in background
//! tasks, and reports back as [`Action`]s on a channel (as gitui's asyncgit does). The
//! pollers (`watchers.rs`) keep the picture of the cluster fresh; each [`Effect`] runs in a
//! task of its own (`lab_ops.rs`, `etcd_ops.rs`, `keys.rs`, `load.rs`), so a dead or paused
//! member can slow an answer down but never the screen.

pub mod backups;
mod etcd_ops;
pub use etcd_ops::prefix_end;
mod demo;
pub mod keys;
mod lab_ops;
mod lessons;
mod load;
mod replay;
mod watchers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;
use std::time::Duration;
use std::time::Instant;

use anyhow::Result;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::EtcdClient;
use crate::lab::Lab;
use crate::lab::supervisor::LabShape;
use crate::pki::CertFiles;
use crate::tui::app::Action;
use crate::tui::app::Effect;

/// What the app looks at.
#[derive(Debug, Clone)]
pub enum Source {
    Lab {
        home: PathBuf,
        name: String,
    },
    Attached {
        endpoints: Vec<String>,
        cert: Option<CertFiles>,
    },
    /// A lab's recording, shown read-only.
    Replay(Arc<crate::lab::recording::Recording>),
}

/// How long one request to a member may take before the app reports it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Io {
    source: Source,
    tx: UnboundedSender<Action>,
    started: Instant,
    /// Which part of the members' logs the Raft log tab shows (None: not shown).
    log_window: watch::Sender<Option<Option<u64>>>,
    clients: Mutex<HashMap<String, EtcdClient>>,
    /// Client URLs, the leader's first when it is known.
    endpoints: RwLock<Vec<String>>,
    keys_task: Mutex<Option<JoinHandle<()>>>,
    watch_task: Mutex<Option<JoinHandle<()>>>,
    load_task: Mutex<Option<JoinHandle<()>>>,
    /// The continuous backup started from the app, if any.
    backup: Mutex<Option<backups::Running>>,
    coach: lessons::Coach,
    /// The demo being presented, played one step at a time.
    demo: tokio::sync::Mutex<Option<crate::course::demo::Player>>,
    /// Counts the times the lab moved or was made anew under the app. A picture of the
    /// cluster gathered across such a change shows members that are gone: it is dropped.
    /// The lock is held while a picture is checked and sent, so none can slip in after the
    /// change is announced.
    lab_generation: Mutex<u64>,
    /// Wakes the status poller at once, after the lab changed.
    status_poke: tokio::sync::Notify,
}

impl Io {
    pub fn new(source: Source, tx: UnboundedSender<Action>) -> Arc<Io> {
        let endpoints = match &source {
            Source::Attached { endpoints, .. } => endpoints.clone(),
            Source::Lab { home, name } => Lab::open(home, name).map(|l| l.endpoints()).unwrap_or_default(),
            Source::Replay(_) => vec![],
        };
        Arc::new(Io {
            source,
            tx,
            started: Instant::now(),
            log_window: watch::channel(None).0,
            clients: Mutex::default(),
            endpoints: RwLock::new(endpoints),
            keys_task: Mutex::default(),
            watch_task: Mutex::default(),
            load_task: Mutex::default(),
            backup: Mutex::default(),
            coach: lessons::Coach::default(),
            demo: tokio::sync::Mutex::new(None),
            lab_generation: Mutex::new(0),
            status_poke: tokio::sync::Notify::new(),
        })
    }

    fn send(&self, action: Action) {
        // The app is gone when nobody listens: nothing left to tell.
        let _ = self.tx.send(action);
    }

    fn lab(&self) -> Result<Lab> {
        match &self.source {
            Source::Lab { home, name } => Lab::open(home, name),
            Source::Attached { .. } | Source::Replay(_) => anyhow::bail!("this needs a raftty lab"),
        }
    }

    fn cert(&self) -> Option<CertFiles> {
        match &self.source {
            Source::Lab { .. } => self.lab().ok().map(|l| l.root_cert()),
            Source::Attached { cert, .. } => cert.clone(),
            Source::Replay(_) => None,
        }
    }

    /// A client for `endpoint`, made once and kept.
    fn client(&self, endpoint: &str) -> Result<EtcdClient> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(endpoint) {
            return Ok(c.clone());
        }
        let c = EtcdClient::connect_lazy_maybe_tls(endpoint, self.cert().as_ref(), REQUEST_TIMEOUT)?;
        clients.insert(endpoint.to_string(), c.clone());
        Ok(c)
    }

    /// Connections made to members that may listen elsewhere now (after a restore).
    fn forget_clients(&self) {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn endpoints(&self) -> Vec<String> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_endpoints(&self, list: Vec<String>) {
        *self.endpoints.write().unwrap_or_else(|e| e.into_inner()) = list;
    }

    /// Starts the lab if it is not running, and the pollers that keep the app's picture
    /// of the cluster fresh.
    pub fn start(self: &Arc<Self>, shape: LabShape) {
        // A replay shows the recording at the moments the app asks for, and nothing else.
        if matches!(self.source, Source::Replay(_)) {
            return;
        }
        if let Source::Lab { home, name } = &self.source {
            let (io, home, name) = (self.clone(), home.clone(), name.clone());
            tokio::spawn(async move { io.bring_up(home, name, shape).await });
        }
        watchers::spawn_all(self);
        self.restart_keys(None);
        lessons::start(self);
    }

    /// The lab changed under the app (a demo step restored it, say): its members may listen
    /// on new ports, and the keys may be others.
    fn lab_moved(self: &Arc<Self>) {
        self.lab_changed(None);
    }

    /// The lab was made anew under the app (a lesson's fresh lab, a demo gone back to its
    /// start): what the app showed of the old one is forgotten, not shown as the new one's.
    fn lab_made_anew(self: &Arc<Self>, why: String) {
        self.lab_changed(Some(why));
    }

    fn lab_changed(self: &Arc<Self>, made_anew: Option<String>) {
        {
            let mut generation = self.lab_generation.lock().unwrap_or_else(|e| e.into_inner());
            *generation += 1;
            if let Some(why) = made_anew {
                self.send(Action::LabMadeAnew(why));
            }
        }
        if let Ok(lab) = self.lab() {
            self.forget_clients();
            self.set_endpoints(lab.endpoints());
        }
        self.restart_keys(None);
        self.status_poke.notify_one();
    }

    fn lab_generation(&self) -> u64 {
        *self.lab_generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the cluster's picture and its client URLs (leader first) as the app's, unless
    /// the lab changed since `generation`, when its gathering began.
    fn send_cluster(&self, view: crate::tui::app::ClusterView, endpoints: Vec<String>, generation: u64) {
        let now = self.lab_generation.lock().unwrap_or_else(|e| e.into_inner());
        if *now == generation {
            self.set_endpoints(endpoints);
            self.send(Action::Cluster(view));
        }
    }

    async fn bring_up(self: Arc<Self>, home: PathBuf, name: String, shape: LabShape) {
        let running = Lab::open(&home, &name).is_ok_and(|lab| {
            lab.config.active_members().all(|m| lab.process(&m.name).state != crate::lab::process::ProcessState::Exited)
        });
        if running {
            return;
        }
        let members = shape.nodes.unwrap_or(3);
        self.send(Action::Starting(format!("starting lab {name}: {members} members, electing a leader…")));
        match crate::lab::supervisor::up(&home, &name, shape).await {
            Ok((lab, _)) => {
                self.set_endpoints(lab.endpoints());
                self.restart_keys(None);
            }
            Err(e) => self.send(Action::StartFailed(format!("{e:#}"))),
        }
    }

    /// Carries out `effect` in the background.
    pub fn run(self: &Arc<Self>, effect: Effect) {
        let io = self.clone();
        if let Source::Replay(recording) = &self.source {
            if let Effect::ReplayTo(at) = effect {
                replay::show(self, recording, at);
            }
            return;
        }
        match effect {
            Effect::ReplayTo(_) => {}
            Effect::Lab(op) => {
                tokio::spawn(async move { lab_ops::run(&io, op).await });
            }
            Effect::Etcd(op) => etcd_ops::run(&io, op),
            Effect::Backup(op) => backups::run(&io, op),
            Effect::Lesson(op) => lessons::run(&io, op),
            Effect::Demo(op) => demo::run(&io, op),
            Effect::FetchKey { key, revision } => {
                tokio::spawn(async move { keys::fetch_key(&io, key, revision).await });
            }
            Effect::FetchHistory { key } => {
                tokio::spawn(async move { keys::fetch_history(&io, key).await });
            }
            Effect::LoadKeys { revision } => self.restart_keys(revision),
            Effect::LogWindow { from } => {
                self.log_window.send_replace(Some(from));
            }
            Effect::Load(rate) => load::set(&io, rate),
            // The main loop leaves; stopping the lab is done there, after the terminal is back.
            Effect::Quit { .. } => {}
        }
    }

    /// The Raft log tab is no longer on screen: stop reading logs.
    pub fn hide_log(&self) {
        self.log_window.send_replace(None);
    }

    fn restart_keys(self: &Arc<Self>, revision: Option<i64>) {
        let io = self.clone();
        let task = tokio::spawn(async move { keys::follow(&io, revision).await });
        if let Some(old) = self.keys_task.lock().unwrap_or_else(|e| e.into_inner()).replace(task) {
            old.abort();
        }
    }

    /// Seconds since the app started, the clock of metric samples.
    fn clock(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Stops every member of the lab, for `q` then `s`.
pub fn stop_lab(source: &Source) -> Result<Vec<String>> {
    match source {
        Source::Lab { home, name } => crate::lab::supervisor::down(home, name, false),
        Source::Attached { .. } | Source::Replay(_) => Ok(vec![]),
    }
}
