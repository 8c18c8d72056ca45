//! The command line: every feature of the lab is a headless command first, so it can be
//! scripted, tested and rehearsed; the terminal app drives the same library code.

use std::path::PathBuf;

use clap::Parser;
use clap::Subcommand;

#[derive(Debug, Parser)]
#[command(
    name = "raftty",
    version,
    about = "An etcd you can hold in your hands: a real Raft cluster on this machine"
)]
pub struct Cli {
    /// The lab to act on (a lab is one local cluster).
    #[arg(long, global = true, default_value = crate::lab::DEFAULT_LAB, env = "RAFTTY_LAB")]
    pub lab: String,

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
        /// Members of a new lab snapshot their state every this many log entries (default
        /// 10000); the log before a snapshot is purged.
        #[arg(long)]
        snapshot_every: Option<u64>,
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
    Env,
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
