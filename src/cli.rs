//! The command line: every feature of the lab is a headless command first, so it can be
//! scripted, tested and rehearsed; the terminal app drives the same library code.

use std::path::PathBuf;

use clap::Parser;
use clap::Subcommand;

#[derive(Debug, Parser)]
#[command(
    name = "raftty",
    version,
    about = "An etcd you can hold in your hands: a real Raft cluster on this machine",
    long_about = "An etcd you can hold in your hands: a real Raft cluster on this machine.\n\n\
                  With no command, raftty opens the terminal app on the lab, starting it first if it \
                  is not running."
)]
pub struct Cli {
    /// The lab to act on (a lab is one local cluster).
    #[arg(long, global = true, default_value = crate::lab::DEFAULT_LAB, env = "RAFTTY_LAB")]
    pub lab: String,

    /// The app: number of members of a new lab (default 3).
    #[arg(long)]
    pub nodes: Option<usize>,
    /// The app: Raft timing of a new lab (`etcd`, `slow` or HEARTBEAT_MS/ELECTION_MS).
    #[arg(long, value_parser = crate::lab::Tempo::parse)]
    pub tempo: Option<crate::lab::Tempo>,
    /// The app: colours, `dark`, `light` or `mono` (NO_COLOR always means mono).
    #[arg(long)]
    pub theme: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the lab if needed and start every member that is not running.
    Up {
        /// Number of members of a new lab (default 3).
        #[arg(long)]
        nodes: Option<usize>,
        /// Raft timing of a new lab: `etcd` (100 ms heartbeat, 1 s election timeout), `slow`
        /// (ten times slower), or HEARTBEAT_MS/ELECTION_MS.
        #[arg(long, value_parser = crate::lab::Tempo::parse)]
        tempo: Option<crate::lab::Tempo>,
        /// Members of a new lab snapshot their state every this many log entries; the log
        /// before a snapshot is purged. Without it: every 10000 entries, or less often once
        /// the history holds more revisions than that.
        #[arg(long)]
        snapshot_every: Option<u64>,
        /// etcd's backend quota per member, in bytes (suffixes KiB, MiB, GiB accepted):
        /// past it the NOSPACE alarm stops writes. 0 is etcd's default, 2 GiB; negative, none.
        #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
        quota_backend_bytes: Option<i64>,
    },
    /// Open the terminal app on any etcd cluster, such as a real etcd: keys, members,
    /// metrics and events inferred from status changes.
    Attach {
        /// Client URLs, comma-separated (https://... with the certificate flags).
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
        /// The CA that signed the members' certificates.
        #[arg(long, requires_all = ["cert", "key"])]
        cacert: Option<PathBuf>,
        /// A client certificate the members accept.
        #[arg(long, requires_all = ["cacert", "key"])]
        cert: Option<PathBuf>,
        /// Its private key.
        #[arg(long, requires_all = ["cacert", "cert"])]
        key: Option<PathBuf>,
    },
    /// Snapshots in etcd's own format: save one from a member, or read one (raftty's or
    /// etcd's).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Per-user certificates signed by the lab's CA, and any certificate explained.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Guided lessons, each step checked against the live cluster: list, start, check, hint.
    Lesson {
        #[command(subcommand)]
        action: LessonCommand,
        /// Also take lessons from this folder (repeatable; `$RAFTTY_LESSONS` adds more,
        /// colon-separated). A lesson there replaces a built-in one with the same id.
        #[arg(long, global = true)]
        lessons: Vec<PathBuf>,
    },
    /// Workshop demos in the app's presentation mode, paced by the presenter: `raftty demo`
    /// lists them, `raftty demo failover` makes its lab and presents it.
    Demo {
        /// The demo to present (none: list the demos).
        name: Option<String>,
        /// Replace the lab without asking.
        #[arg(long)]
        yes: bool,
        /// Play the named demos (or --all) through in scratch labs, going back to the last
        /// checkpoint once, and report every step that did not show its outcome.
        #[arg(long)]
        verify: bool,
        #[arg(long, requires = "verify")]
        all: bool,
        /// Also take demos from DIR/demos (as lessons come from DIR).
        #[arg(long)]
        lessons: Vec<PathBuf>,
    },
    /// Disaster-recovery drills, scored: a disaster strikes a busy, backed-up lab at a random
    /// moment; recover it with the real commands; the score says how long it took, what was
    /// lost and whether the members agree.
    Drill {
        #[command(subcommand)]
        action: DrillCommand,
    },
    /// Create a lab from a backup (a snapshot file, raftty's or etcd's, or an etcd data dir)
    /// and start it: a new cluster with new ids and every revision, as etcd's restore does.
    Restore {
        /// The snapshot file, or an etcd data dir (its member/snap/db).
        source: PathBuf,
        /// Members of the new lab.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Restore the state as it stood at this revision.
        #[arg(long)]
        to_revision: Option<i64>,
        /// Stop the lab of that name and restore in its place, keeping its certificates.
        #[arg(long)]
        replace: bool,
        /// Accept a file without its SHA-256 trailer (a member's db file), as etcdctl does.
        #[arg(long)]
        skip_hash_check: bool,
    },
    /// Continuous backup into DIR: a full snapshot, then every change after it, with a new
    /// full snapshot every so often; `raftty backup list DIR` shows what it covers.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Backup {
        #[command(subcommand)]
        action: Option<BackupCommand>,
        /// Where the backup lives (it resumes there after a stop); by default the lab's
        /// backup folder, `$RAFTTY_HOME/backups/LAB/continuous`.
        dir: Option<PathBuf>,
        /// How often to take a new full snapshot.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
        every: std::time::Duration,
        /// How often to print the revision reached and the lag.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
        progress_every: std::time::Duration,
    },
    /// Rebuild a cluster that lost its quorum for good around the surviving member NAME
    /// (etcd's --force-new-cluster drill): NAME alone with its data, then fresh members.
    Recover {
        name: String,
        /// Rebuild even though a quorum still answers.
        #[arg(long)]
        force: bool,
    },
    /// Stop the lab's members.
    Down {
        /// Also delete the lab's folder: data, certificates, logs.
        #[arg(long)]
        purge: bool,
    },
    /// Show every member's process and Raft state.
    Status {
        /// Print stable JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Print `export` lines that point etcdctl at the lab: eval "$(raftty env)".
    Env {
        /// Point at this member only (etcdctl's snapshot save wants exactly one endpoint).
        #[arg(long)]
        member: Option<String>,
        /// Act as this user, with the certificate `raftty cert issue NAME` made.
        #[arg(long)]
        user: Option<String>,
    },
    /// Kill a member with SIGKILL, as a power cut would.
    Kill { name: String },
    /// Stop a member gracefully (SIGTERM).
    Stop { name: String },
    /// Freeze a member with SIGSTOP, like a stalled VM or a long GC pause.
    Pause { name: String },
    /// Let a paused member carry on (SIGCONT).
    Resume { name: String },
    /// Start a member that is not running, with its data.
    Start { name: String },
    /// Split the members into groups that cannot exchange Raft messages, e.g. "n1,n2|n3".
    Partition { groups: String },
    /// Cut one member off from all the others, both ways (the partition "NAME | the rest").
    Isolate { name: String },
    /// Lose every message from one member to another (one direction only).
    Cut { from: String, to: String },
    /// Degrade a member's links: delay, jitter and loss on every message to or from it.
    Slow {
        name: String,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "200ms")]
        delay: std::time::Duration,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "0ms")]
        jitter: std::time::Duration,
        /// Share of messages lost, e.g. 10%.
        #[arg(long, value_parser = crate::lab::faults::parse_percent, default_value = "0")]
        loss: f64,
    },
    /// Remove every network fault.
    Heal,
    /// Follow what every member's Raft does, as one live timeline.
    Events {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Start with the events each member still remembers.
        #[arg(long)]
        recent: bool,
        /// Stop after this many events (default: follow forever).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Print a member's Raft log: index, term, kind and what each entry does.
    Log {
        name: String,
        /// First index to show (default: the last entries).
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Grow or shrink the cluster.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Replay what the lab recorded, in the app and read-only: ← and → step from one recorded
    /// moment to the next, shift-← and shift-→ jump by 5 s.
    Replay {
        /// A recording exported with --export, to replay instead of the lab's own.
        file: Option<PathBuf>,
        /// Open at this moment: a time such as 2026-12-02T11:03:53Z, or an offset such as +12s
        /// from the recording's start (default: its start).
        #[arg(long)]
        from: Option<String>,
        /// Print the cluster as it was at this moment, as `raftty status` printed it then,
        /// instead of opening the app.
        #[arg(long, conflicts_with_all = ["export", "from"])]
        at: Option<String>,
        /// With --at: print JSON, as `raftty status --json`.
        #[arg(long, requires = "at")]
        json: bool,
        /// Write the recording to one file that another machine can replay.
        #[arg(long, conflicts_with = "from")]
        export: Option<PathBuf>,
    },
    /// Step mode: hold every Raft message until you deliver or drop it, one at a time.
    #[command(subcommand)]
    Step(StepCommand),
    /// Change the Raft timing of a running lab: `etcd`, `slow` or HEARTBEAT_MS/ELECTION_MS.
    Tempo {
        #[arg(value_parser = crate::lab::Tempo::parse)]
        tempo: crate::lab::Tempo,
    },
    /// Compare every running member's HashKV at the same revision.
    Check {
        #[arg(long)]
        json: bool,
        /// How long members that are behind get to catch up.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
        wait: std::time::Duration,
    },
    /// Measure throughput and latency against a fresh 3-member lab, side by side with etcd
    /// when `etcd` is on PATH.
    Bench {
        /// How long each workload runs.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Do not start etcd for comparison even if it is installed.
        #[arg(long)]
        no_etcd: bool,
        /// Size of the key space written and read.
        #[arg(long, default_value_t = 10_000)]
        keys: u64,
        /// Size of each value written, in bytes.
        #[arg(long, default_value_t = 256)]
        value_size: usize,
        /// Members of each cluster.
        #[arg(long, default_value_t = 3)]
        members: usize,
        /// Run only these measurements: put1, put16, put256, getl, gets, gets1, auth (put16 and gets with auth on), fanout, failover, snapshot, app.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Also break a single client's put into stages as the leader sees them (propose,
        /// log durable, replication, commit, apply, answer), p50 and p99 of each.
        #[arg(long)]
        explain: bool,
        /// Then a single client's put this many more times on each system, alternating
        /// raftty and etcd, with each round's ratio and their median: on a machine whose
        /// disk and CPU drift, one run of each measures the drift as much as the systems.
        #[arg(long, default_value_t = 0)]
        rounds: usize,
    },
    /// Print a member's Prometheus metrics (etcd's names), read over mTLS with the lab's
    /// root certificate.
    Metrics {
        /// The member's name in the lab (n1, n2, ...).
        name: String,
        /// Print only the lines containing this text; exit 1 if none does.
        #[arg(long)]
        grep: Option<String>,
    },
    /// Jepsen-style test of a fresh lab: concurrent clients, random faults, then a check
    /// that the history is linearizable and nothing acknowledged was lost.
    Torture {
        /// Reproduces a run's choices of requests and faults.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
        duration: std::time::Duration,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// 3 or 5 members.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Faults to inject: comma-separated names, `all`, or `none`.
        #[arg(long, default_value = "all")]
        nemesis: String,
        /// Keys the clients contend on.
        #[arg(long, default_value_t = 16)]
        keys: usize,
        /// Where to save the history and the account of a violation.
        #[arg(long, default_value = ".")]
        out: std::path::PathBuf,
    },
    /// Run one cluster member (started by the lab supervisor).
    Node {
        /// The lab's folder.
        #[arg(long)]
        lab_dir: PathBuf,
        /// The member's name in the lab (n1, n2, ...).
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// The full snapshots and change logs of a backup, and the revisions it can restore;
    /// without DIR, every backup of the lab (its backup folder and what raftty saved
    /// elsewhere).
    List { dir: Option<PathBuf> },
}

#[derive(Debug, Subcommand)]
pub enum LessonCommand {
    /// Every lesson, with the learner's progress.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make the lesson's lab (the lab `default` unless --lab says otherwise, replacing what
    /// is there) and print step 1.
    Start {
        id: String,
        /// Replace an existing lab without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Where the learner is: the lesson, the step and its goal.
    Status,
    /// Check the current step against the live cluster: says what is missing (and exits
    /// non-zero), or explains what happened and moves on.
    Check,
    /// Reveal the current step's next hint.
    Hint,
    /// Begin the current step again (or, with --lesson, the whole lesson on a fresh lab).
    Reset {
        #[arg(long)]
        lesson: bool,
    },
    /// Print the current step's solution; with --play, run it (the step then counts as
    /// shown, not as solved).
    Solution {
        #[arg(long)]
        play: bool,
    },
    /// Play lessons in fresh labs: each step's check must fail before its solution and pass
    /// after it. For authors: `raftty lesson verify --dir my-lessons --all`.
    Verify {
        ids: Vec<String>,
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Verify the lessons of this folder (instead of the built-in ones).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write a new lesson file ID.toml to start from (in DIR, default the current folder).
    New {
        id: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// The kinds of drill: what each destroys, what a good recovery may lose, where to look.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make the drill's lab (the lab `default` unless --lab says otherwise; an existing one is
    /// replaced once you agree, or with --yes), start a workload and a continuous backup, and
    /// strike at a random moment.
    Start {
        /// total-loss, quorum-loss, member-disk-loss or nospace.
        #[arg(value_parser = crate::course::drill::Kind::parse)]
        kind: crate::course::drill::Kind,
        /// Replace an existing lab without asking.
        #[arg(long)]
        yes: bool,
        /// Where the continuous backup goes (an empty or new folder); by default
        /// `$RAFTTY_HOME/backups/LAB/drill`.
        #[arg(long)]
        backup_dir: Option<PathBuf>,
    },
    /// What the drill under way struck, and where to look.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Reveal the next hint (the score counts them).
    Hint,
    /// Judge the recovery now: time from the strike to a healthy cluster, acknowledged writes
    /// lost, HashKV agreement; exits non-zero, saying why, until it passes. A pass ends the
    /// drill and is kept with the earlier attempts.
    Score {
        #[arg(long)]
        json: bool,
    },
    /// Give up: stop the drill's workload and backup (the attempt is kept as stopped).
    Stop,
    /// The drill's workload and health watcher (started by `drill start`).
    #[command(hide = true)]
    Workload { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Write pki/users/NAME.crt and NAME.key (0600): a client certificate with CN=NAME, the
    /// etcd user it acts as when a request carries no token.
    Issue {
        name: String,
        /// How long it is valid (default a year).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "365days")]
        valid_for: std::time::Duration,
        /// Make one that expired yesterday, to see a member refuse it.
        #[arg(long)]
        expired: bool,
        /// Make one for servers only (no client authentication), to see a member refuse it
        /// for its key usage.
        #[arg(long, conflicts_with = "no_common_name")]
        server_only: bool,
        /// Leave the CN out (NAME goes in O). While auth is on, etcd 3.4's gateway refuses
        /// certificates that carry a CN: use this one with curl and a token.
        #[arg(long)]
        no_common_name: bool,
    },
    /// Every certificate of the lab: CN, usage, validity, fingerprint.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Explain any certificate file, the lab's or not.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a member's state to FILE, as `etcdctl snapshot save` does (FILE.part, checked,
    /// synced, renamed).
    Save {
        file: PathBuf,
        /// The member to take it from (default: the leader).
        #[arg(long)]
        member: Option<String>,
    },
    /// What a snapshot holds: etcdctl's hash, revision, total keys and size, and the
    /// compaction floor, leases and largest prefixes. Reads raftty's and etcd's files.
    Status {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Start a new member, add it as a learner, wait until it has caught up, promote it.
    Add {
        /// Stop at the learner: do not promote it to a voter.
        #[arg(long)]
        learner: bool,
    },
    /// Promote a learner to a voter.
    Promote { name: String },
    /// Remove a member from the cluster and stop its process.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum StepCommand {
    /// Hold every Raft message each member would send, and every answer, until delivered.
    /// Timers go on running. Run again to change --auto-heartbeats.
    On {
        /// Let heartbeats (appends without entries) and their answers flow, so a leader
        /// stays in place while you study what else happens.
        #[arg(long)]
        auto_heartbeats: bool,
    },
    /// Deliver everything held and return to normal flow.
    Off,
    /// The messages waiting, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Deliver held messages: by id (n1-17), all of them, or those on one link.
    Deliver(StepSelection),
    /// Lose held messages, as a network would: their senders hear nothing until they time out.
    Drop(StepSelection),
}

#[derive(clap::Args, Debug)]
pub struct StepSelection {
    /// Message ids, as `raftty step list` shows them (n1-17).
    #[arg(required_unless_present_any = ["all", "from", "to", "kind"], conflicts_with_all = ["all", "from", "to", "kind"])]
    pub ids: Vec<String>,
    /// Every held message.
    #[arg(long, conflicts_with_all = ["from", "to", "kind"])]
    pub all: bool,
    /// Only messages sent by this member.
    #[arg(long)]
    pub from: Option<String>,
    /// Only messages sent to this member.
    #[arg(long)]
    pub to: Option<String>,
    /// Only messages of these kinds, comma-separated: append, append-response, vote,
    /// vote-response, prevote, prevote-response, snapshot, snapshot-response; `votes` for
    /// the four kinds of vote.
    #[arg(long, value_parser = kinds_of_message)]
    pub kind: Option<String>,
}

fn kinds_of_message(list: &str) -> Result<String, String> {
    crate::lab::step::parse_kinds(list).map(|_| list.to_string()).map_err(|e| e.to_string())
}

impl StepSelection {
    pub fn selection(self) -> crate::lab::step::Selection {
        use crate::lab::step::Selection;
        if self.all {
            Selection::All
        } else if self.from.is_some() || self.to.is_some() || self.kind.is_some() {
            let kinds = self.kind.as_deref().map(crate::lab::step::parse_kinds).and_then(Result::ok);
            Selection::Matching { from: self.from, to: self.to, kinds: kinds.unwrap_or_default() }
        } else {
            Selection::Ids(self.ids)
        }
    }
}

/// A byte count as people write it: `4194304`, `4MiB`, `512KiB`, `2GiB` (also KB, MB, GB,
/// meaning the same powers of two, as etcd's documentation uses them).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let number: i64 =
        number.parse().map_err(|_| format!("{s:?} is not a number of bytes (such as 4194304 or 4MiB)"))?;
    let scale: i64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} in {s:?}: use bytes, KiB, MiB or GiB")),
    };
    number.checked_mul(scale).ok_or_else(|| format!("{s:?} is too large"))
}
