//! etcd's auth, as etcd 3.4 behaves: users with bcrypt-hashed passwords, roles with key
//! permissions, simple tokens, and the checks every request goes through.
//!
//! - `store.rs`: the replicated auth state (part of the MVCC store's state, so it is stored,
//!   snapshotted and restored with the keys) and the auth changes the state machine applies,
//!   with etcd's rules and errors;
//! - `perms.rs`: whether a user's permissions cover a key or a range;
//! - `gate.rs`: who is asking (a token, else the client certificate's CN) and whether they
//!   may do what they ask, for the API layer;
//! - `tokens.rs`: the lifetime of simple tokens on this member (300 s, reset on use).

pub mod gate;
pub mod perms;
pub mod store;
pub mod tokens;
