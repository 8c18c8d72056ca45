//! What proves raftty right and fast: a linearizability and watch-guarantees checker
//! (`check/`), the Jepsen-style torture harness whose histories it judges (`torture/`), and
//! the benchmark that measures raftty side by side with etcd (`bench/`).

pub mod bench;
pub mod check;
pub mod torture;
