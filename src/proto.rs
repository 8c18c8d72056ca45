//! The generated protobuf code: etcd's wire types and services (with the JSON mapping etcd's
//! HTTP gateway uses), and raftty's own.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

pub mod authpb {
    tonic::include_proto!("authpb");
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

pub mod rafttypb {
    tonic::include_proto!("rafttypb");
}

pub mod rafttystore {
    tonic::include_proto!("rafttystore");
}

pub mod rafttyadmin {
    tonic::include_proto!("rafttyadmin");
}
