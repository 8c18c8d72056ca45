//! Snapshot files: the state machine's content at one applied log index, written to disk so
//! it survives restarts and can be streamed to a lagging or new member.

use std::path::PathBuf;

/// A snapshot that lives in a file of the member's data directory.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub path: PathBuf,
}
