//! Tests of the MVCC store against etcd 3.4 rules.
