//! etcd's data model (MVCC) on redb: revisions, versions, tombstones, compaction, ranges,
//! transactions and leases, behaving like etcd 3.4.
//!
//! ## The model
//!
//! The store has one global revision, 1 when empty. A command that changes anything is
//! written at the next main revision, each change in it at sub-revision 0, 1, 2...; a command
//! that changes nothing leaves the revision alone. Every change is kept, deletes as
//! tombstones, until a compaction discards history no read may ask for any more.
//!
//! ## Where things live
//!
//! - `state.redb` (see [`store`]): table `revisions` maps (main, sub) to the
//!   [`RevisionRecord`](crate::proto::rafttystore::RevisionRecord) written then (the full
//!   key-value, or a tombstone); table `leases` maps lease id to its record; table `meta`
//!   holds the owner ([`StoreIdentity`](crate::node::raft::types::StoreIdentity)) and the store
//!   state (revision, compaction point, applied Raft log id and membership).
//! - In memory (see [`state`]): the key index (key -> the revisions it changed at, like
//!   etcd's treeIndex; see [`index`]), the revision and compaction point, and the leases with
//!   the keys attached to each. All of it is rebuilt from the file at start-up.
//!
//! ## Readers and the writer
//!
//! Reads come from many gRPC tasks while the Raft state machine applies; a reader must never
//! see half a batch, nor an index entry whose record a compaction already removed. So:
//!
//! - the in-memory state sits behind one `RwLock`;
//! - the writer takes the write lock for a whole batch: it applies every command to the
//!   in-memory state and to one redb write transaction, commits that transaction, and only
//!   then lets go. In-memory state and committed file therefore change together;
//! - a reader takes the read lock and, while holding it, opens a redb read transaction. The
//!   two describe the same commit, and the read transaction is a stable snapshot for as long
//!   as the read lasts.
//!
//! Batch commits use redb's `Durability::None` (no fsync): the Raft log is already durable,
//! and after a crash openraft re-applies it from the applied log id recorded *in the same
//! transaction* as the data, which therefore can never be ahead of the data. At most every
//! [`DURABLE_EVERY`] (and when a snapshot is built, on [`MvccStore::flush`], and when the
//! file is closed) an empty commit with `Durability::Immediate` makes everything before it
//! durable, outside the lock, so readers never wait for an fsync.
//!
//! A command runs in the writer's view ([`write`]), which reads its own earlier writes (as
//! etcd reads at revision + 1 inside a write transaction) and keeps an undo log: a command
//! refused half-way (possible only in corner cases etcd itself would crash on) leaves
//! nothing behind.
//!
//! ## The rest
//!
//! [`range`], [`txn`], [`compact`], [`lease`] and [`alarm`] hold etcd's rules, [`validate`] the request
//! checks the API layer runs before proposing, [`hash`] HashKV, [`events`] what watchers get.

pub mod alarm;
pub(crate) mod apply;
pub mod compact;
pub mod error;
pub mod events;
pub mod hash;
pub mod index;
pub mod lease;
pub mod range;
pub mod record;
pub mod span;
pub mod state;
pub mod store;
pub mod txn;
pub mod validate;
pub(crate) mod view;
pub(crate) mod write;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use events::RevisionEvents;
pub use events::WatchFeed;
pub use hash::HashKv;
pub use index::Revision;
pub use span::KeySpan;
pub use state::MAX_LEASE_TTL;
pub use state::MIN_LEASE_TTL;
pub use store::DURABLE_EVERY;
pub use store::LeaseInfo;
pub use store::MvccStore;
pub use store::RestoreItem;
pub use store::STATE_FILE;
pub use store::StoreSnapshot;
pub use txn::is_read_only;
