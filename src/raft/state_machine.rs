//! openraft's state machine for raftty: applies committed commands to the MVCC store.

/// Placeholder until the storage work lands.
#[derive(Clone)]
pub struct StateMachineStore;
