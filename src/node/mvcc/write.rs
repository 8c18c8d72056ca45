//! The writer's view: applies one command at a time to the in-memory state and to the redb
//! write transaction of the batch, keeping an undo log so a command that fails half-way
//! leaves no trace.
//!
//! Readers cannot see any of this until the batch commits: the writer holds the state's write
//! lock for the whole batch (see the module documentation of `mvcc`).

use std::path::Path;

use bytes::Bytes;
use prost::Message;
use redb::Table;

use crate::errors::EtcdError;
use crate::node::mvcc::error::AtPath;
use crate::node::mvcc::error::Failure;
use crate::node::mvcc::error::StoreError;
use crate::node::mvcc::events::RevisionEvents;
use crate::node::mvcc::index::IndexEntry;
use crate::node::mvcc::index::KeyIndex;
use crate::node::mvcc::index::Revision;
use crate::node::mvcc::index::live_at;
use crate::node::mvcc::record::put_record;
use crate::node::mvcc::record::read_record;
use crate::node::mvcc::record::tombstone_record;
use crate::node::mvcc::span::KeySpan;
use crate::node::mvcc::state::Lease;
use crate::node::mvcc::state::State;
use crate::node::mvcc::view::ReadView;
use crate::node::mvcc::view::TxnTarget;
use crate::proto::mvccpb::Event;
use crate::proto::mvccpb::KeyValue;
use crate::proto::mvccpb::event::EventType;
use crate::proto::rafttystore::LeaseRecord;
use crate::proto::rafttystore::RevisionRecord;

pub(crate) type RecordTable<'t> = Table<'t, (i64, i64), &'static [u8]>;
pub(crate) type LeaseTable<'t> = Table<'t, i64, &'static [u8]>;

/// One step to take back if the command fails.
enum Undo {
    Stored(Revision),
    Indexed(Bytes),
    Attached { lease: i64, key: Bytes },
    Detached { lease: i64, key: Bytes },
}

pub(crate) struct Writer<'w, 't> {
    pub state: &'w mut State,
    records: &'w mut RecordTable<'t>,
    lease_table: &'w mut LeaseTable<'t>,
    path: &'w Path,
    /// The store revision before the command being applied.
    begin: i64,
    events: Vec<Event>,
    undo: Vec<Undo>,
}

impl<'w, 't> Writer<'w, 't> {
    pub fn new(
        state: &'w mut State,
        records: &'w mut RecordTable<'t>,
        lease_table: &'w mut LeaseTable<'t>,
        path: &'w Path,
    ) -> Self {
        let begin = state.revision;
        Writer { state, records, lease_table, path, begin, events: Vec::new(), undo: Vec::new() }
    }

    pub fn begin_command(&mut self) {
        self.begin = self.state.revision;
        self.events.clear();
        self.undo.clear();
    }

    /// Closes a successful command: if it changed anything, that is the next revision.
    pub fn finish_command(&mut self) -> Option<RevisionEvents> {
        self.undo.clear();
        if self.events.is_empty() {
            return None;
        }
        self.state.revision = self.begin + 1;
        Some(RevisionEvents { revision: self.state.revision, events: std::mem::take(&mut self.events) })
    }

    /// Takes back everything the failed command did.
    pub fn roll_back(&mut self) -> Result<(), StoreError> {
        while let Some(step) = self.undo.pop() {
            match step {
                Undo::Stored(rev) => {
                    self.records.remove((rev.main, rev.sub)).at(self.path)?;
                }
                Undo::Indexed(key) => self.state.index.pop(&key),
                Undo::Attached { lease, key } => {
                    if let Some(l) = self.state.leases.get_mut(&lease) {
                        l.keys.remove(&key);
                    }
                }
                Undo::Detached { lease, key } => {
                    if let Some(l) = self.state.leases.get_mut(&lease) {
                        l.keys.insert(key);
                    }
                }
            }
        }
        self.events.clear();
        Ok(())
    }

    fn next_revision(&self) -> Revision {
        Revision::new(self.begin + 1, self.events.len() as i64)
    }

    fn store(&mut self, rev: Revision, record: &RevisionRecord) -> Result<(), StoreError> {
        self.records.insert((rev.main, rev.sub), record.encode_to_vec().as_slice()).at(self.path)?;
        self.undo.push(Undo::Stored(rev));
        Ok(())
    }

    fn index_entry(&mut self, key: Bytes, entry: IndexEntry) {
        self.state.index.push(key.clone(), entry);
        self.undo.push(Undo::Indexed(key));
    }

    fn attach(&mut self, lease: i64, key: &Bytes) -> Result<(), Failure> {
        let l = self.state.leases.get_mut(&lease).ok_or(EtcdError::LeaseNotFound)?;
        if l.keys.insert(key.clone()) {
            self.undo.push(Undo::Attached { lease, key: key.clone() });
        }
        Ok(())
    }

    fn detach(&mut self, lease: i64, key: &Bytes) {
        if let Some(l) = self.state.leases.get_mut(&lease)
            && l.keys.remove(key)
        {
            self.undo.push(Undo::Detached { lease, key: key.clone() });
        }
    }

    /// The key's value before this command, for the watch event's `prev_kv` (etcd reads it at
    /// the revision before the event's).
    fn value_before_command(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        live_at(self.state.index.history(key), self.begin).map(|rev| self.kv_at(rev)).transpose()
    }

    fn delete_key(&mut self, key: Bytes, current: &KeyValue) -> Result<(), Failure> {
        let rev = self.next_revision();
        let prev_kv = self.value_before_command(&key)?;
        let record = tombstone_record(key.clone(), rev.main);
        self.store(rev, &record)?;
        self.index_entry(key.clone(), IndexEntry { rev, tombstone: true });
        if current.lease != 0 {
            self.detach(current.lease, &key);
        }
        self.events.push(Event { r#type: EventType::Delete as i32, kv: record.kv, prev_kv });
        Ok(())
    }

    // Lease table, used by grant, checkpoint and revoke; those check everything before they
    // change anything, so these need no undo.

    pub fn save_lease(&mut self, lease: Lease) -> Result<(), StoreError> {
        self.write_lease_record(&lease.record())?;
        self.state.leases.insert(lease.id, lease);
        Ok(())
    }

    pub fn write_lease_record(&mut self, record: &LeaseRecord) -> Result<(), StoreError> {
        self.lease_table.insert(record.id, record.encode_to_vec().as_slice()).at(self.path)?;
        Ok(())
    }

    pub fn remove_lease(&mut self, id: i64) -> Result<(), StoreError> {
        self.lease_table.remove(id).at(self.path)?;
        self.state.leases.remove(&id);
        Ok(())
    }

    /// Deletes the records a compaction discards from the file.
    pub fn remove_records(&mut self, revisions: &[Revision]) -> Result<(), StoreError> {
        for rev in revisions {
            self.records.remove((rev.main, rev.sub)).at(self.path)?;
        }
        Ok(())
    }
}

impl ReadView for Writer<'_, '_> {
    fn read_revision(&self) -> i64 {
        self.begin + i64::from(self.has_changes())
    }

    fn begin_revision(&self) -> i64 {
        self.begin
    }

    fn compact_revision(&self) -> i64 {
        self.state.compact_revision
    }

    fn index(&self) -> &KeyIndex {
        &self.state.index
    }

    fn record(&self, rev: Revision) -> Result<RevisionRecord, StoreError> {
        read_record(&*self.records, rev, self.path)
    }

    fn lease_exists(&self, id: i64) -> bool {
        self.state.leases.contains_key(&id)
    }
}

impl TxnTarget for Writer<'_, '_> {
    fn has_changes(&self) -> bool {
        !self.events.is_empty()
    }

    fn put_kv(&mut self, key: Bytes, value: Bytes, lease: i64) -> Result<i64, Failure> {
        let rev = self.next_revision();
        let current = self.get(&key)?;
        let prev_kv = if self.has_changes() { self.value_before_command(&key)? } else { current.clone() };
        let kv = KeyValue {
            key: key.clone(),
            value,
            create_revision: current.as_ref().map_or(rev.main, |c| c.create_revision),
            mod_revision: rev.main,
            version: current.as_ref().map_or(0, |c| c.version) + 1,
            lease,
        };
        let record = put_record(kv);
        self.store(rev, &record)?;
        self.index_entry(key.clone(), IndexEntry { rev, tombstone: false });
        if let Some(old) = current.as_ref().map(|c| c.lease).filter(|l| *l != 0) {
            self.detach(old, &key);
        }
        if lease != 0 {
            self.attach(lease, &key)?;
        }
        self.events.push(Event { r#type: EventType::Put as i32, kv: record.kv, prev_kv });
        Ok(rev.main)
    }

    fn delete_span(&mut self, span: KeySpan<'_>) -> Result<i64, Failure> {
        let doomed = self.live_kvs(span, self.read_revision())?;
        for kv in &doomed {
            self.delete_key(kv.key.clone(), kv)?;
        }
        Ok(doomed.len() as i64)
    }
}
